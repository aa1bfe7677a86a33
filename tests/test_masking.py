"""Masking secrets in chat text, and spotting agents who ask for them (pure)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from hub.rules.masking import (
    ASK_EXPLANATIONS,
    KINDS,
    SHARE_WARNINGS,
    Masked,
    ask_explanation,
    asks_for_secret,
    id_number_valid,
    luhn_valid,
    mask,
    share_warning,
)

VISA = "4111111111111111"
MASTERCARD = "5500000000000004"
AMEX = "378282246310005"
UNIONPAY_19 = "6222021234567890128"
ID_X = "11010519491231002X"


def luhn_complete(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def id_complete(body: str) -> str:
    return next(body + c for c in "0123456789X" if id_number_valid(body + c))


def test_the_sample_numbers_are_valid():
    assert all(luhn_valid(n) for n in (VISA, MASTERCARD, AMEX, UNIONPAY_19))
    assert id_number_valid(ID_X) and id_number_valid(ID_X.lower())
    assert not luhn_valid("4111111111111112")
    assert not id_number_valid("110105194912310021")
    assert not id_number_valid("１１０１０５１９４９１２３１００２X")  # digits as given, not read


# --- verification codes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("您的验证码是123456，5分钟内有效", "您的验证码是******，5分钟内有效"),
        ("【支付】验证码：482913。请勿泄露", "【支付】验证码：******。请勿泄露"),
        ("校验码 8842", "校验码 ****"),
        ("动态码为12345678", "动态码为********"),
        ("短信码收到了，是 5566", "短信码收到了，是 ****"),
        ("123456是您的验证码", "******是您的验证码"),
        ("Your OTP is 482913.", "Your OTP is ******."),
        ("your verification code: 0042", "your verification code: ****"),
        ("The code I got is 771234", "The code I got is ******"),
        ("482913 is your passcode", "****** is your passcode"),
        ("oTp 123456", "oTp ******"),
        ("OTP123456", "OTP******"),
        ("codes 1234 and 5678", "codes **** and ****"),
        ("WhatsApp code 123-456", "WhatsApp code ***-***"),
        ("code: 123 456", "code: *** ***"),
    ],
)
def test_codes_near_a_code_word_are_masked(text, expected):
    masked = mask(text)
    assert masked.text == expected
    assert masked.kinds == {"otp"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("验证码：１２３４５６", "验证码：******"),
        ("验证码　１２３４５６", "验证码　******"),
        ("ＯＴＰ　ｉｓ　６５４３２１", "ＯＴＰ　ｉｓ　******"),
        ("verification code：９９８８", "verification code：****"),
    ],
)
def test_full_width_digits_letters_colons_and_spaces_are_read_as_ascii(text, expected):
    assert mask(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "I got error code 4012",
        "Error-code 5003 again",
        "promo code 2024 is not working",
        "zip code 10001",
        "验证码收不到，我付了88.00",
        "验证码收不到，付了¥5000",
        "验证码没收到，转了5000元",
        "code sent at 12:30",
        "code expired on 2024-05-01",
        "code sent 2024-5",
        "验证码2024年以后一直收不到",
        "code for tx-12345678",
        "code for order_20240501",
        "code 123",
        "code 123456789",
        "phone 138-1234-5678, still no code",
        "验证码收不到。订单号12345678",
        "我没有收到验证码！12345678",
        "barcode 123456",
        "the code arrived; I paid 3000 yuan",
    ],
)
def test_numbers_that_are_not_codes_stay_even_near_a_code_word(text):
    assert mask(text) == Masked(text)


def test_a_code_further_than_the_window_from_the_code_word_stays():
    far = "验证码" + "的" * 30 + "123456"
    assert mask(far).text == far
    near = "验证码" + "的" * 20 + "123456"
    assert mask(near).text.endswith("******")


def test_numbers_near_a_code_word_are_masked_too():
    # The price of never leaking the code: a number next to it goes as well.
    assert mask("验证码123456，订单号12345678").text == "验证码******，订单号********"


# --- cards ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"card {VISA}", "card ************1111"),
        ("卡号 4111 1111 1111 1111 谢谢", "卡号 **** **** **** 1111 谢谢"),
        ("卡号4111-1111-1111-1111", "卡号****-****-****-1111"),
        ("3782 822463 10005", "**** ****** *0005"),
        ("6222 0212 3456 7890 128", "**** **** **** ***0 128"),
        (f"{UNIONPAY_19}!", "***************0128!"),
        ("卡：４１１１　１１１１　１１１１　１１１１", "卡：****　****　****　１１１１"),
        (f"two cards {VISA} and {MASTERCARD}", "two cards ************1111 and ************0004"),
    ],
)
def test_luhn_valid_card_numbers_keep_their_last_four(text, expected):
    masked = mask(text)
    assert masked.text == expected
    assert masked.kinds == {"card"}


def test_a_card_followed_by_more_digit_groups_is_masked_whole():
    # "1111 2024" could read as a new card otherwise; better lose the last four.
    assert mask("4111 1111 1111 1111 2024").text == "**** **** **** **** 2024"


def test_the_last_four_of_a_card_never_start_another():
    # "1111 1234 5678 9001" is Luhn-valid too: keeping the first card's last four would
    # leave a card behind.
    assert mask("4111 1111 1111 1111 1234 5678 9001").text == "**** **** **** **** 1234 5678 9001"


def test_two_cards_in_one_spaced_chain_are_both_masked():
    masked = mask("4111 1111 1111 1111 5500 0000 0000 0004")
    assert masked.text == "**** **** **** **** **** **** **** 0004"


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # Luhn fails
        "4111 1111 1111 1112",
        f"tx-{VISA}",  # part of an identifier
        f"tx_{VISA}",
        f"A{VISA}",
        f"{VISA}abc",
        "411111111111111111111",  # 21 digits: not a card
        "+86 138 1234 5678",
        "13812345678 2023",  # Luhn-valid, but an 11-digit group is no card layout
        "41 1111 1111 1111 1111",
        "4111  1111  1111  1111",  # two spaces do not join groups
    ],
)
def test_numbers_that_are_not_cards_stay(text):
    assert mask(text) == Masked(text)


# --- resident ID numbers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"身份证{ID_X}", "身份证**************002X"),
        (f"ID: {ID_X.lower()}", "ID: **************002x"),
        ("身份证号：１１０１０５１９４９１２３１００２X", "身份证号：**************００２X"),
    ],
)
def test_valid_resident_ids_keep_their_last_four(text, expected):
    masked = mask(text)
    assert masked.text == expected
    assert masked.kinds == {"id_number"}


def test_an_all_digit_id_is_an_id_even_if_luhn_valid_too():
    id_number = next(
        n
        for n in (id_complete(f"{110105194912310000 // 10 + i:017d}") for i in range(500))
        if n[-1] != "X" and luhn_valid(n)
    )
    assert mask(id_number).kinds == {"id_number"}


@pytest.mark.parametrize("text", ["110105194912310021", f"ID{ID_X}", f"{ID_X}Y", f"1{ID_X}"])
def test_invalid_or_glued_ids_stay(text):
    assert mask(text) == Masked(text)


# --- passwords ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的密码是abc123，谢谢", "我的密码是******，谢谢"),
        ("密码：Secret!9 改了吗", "密码：******** 改了吗"),
        ("密码123456", "密码******"),
        ("我的支付密码是１２３４５６", "我的支付密码是******"),
        ("口令letmein", "口令*******"),
        ("口令 letmein7", "口令 ********"),
        ("PIN码是1234", "PIN码是****"),
        ("password: hunter2 ok", "password: ******* ok"),
        ("Password = abc", "Password = ***"),
        ("pwd=Secr3t!", "pwd=*******"),
        ("my password is hunter2.", "my password is ********"),
        ("my password is tiger", "my password is *****"),
        ("password hunter2", "password *******"),
        ("PIN 4321", "PIN ****"),
        ("passwd：abc", "passwd：***"),
        ("password is: xyz", "password is: ***"),
    ],
)
def test_what_follows_a_password_word_is_masked(text, expected):
    masked = mask(text)
    assert masked.text == expected
    assert masked.kinds == {"password"}


@pytest.mark.parametrize(
    "text",
    [
        "密码错误",
        "我忘记支付密码了",
        "密码是多少来着",
        "忘记密码 reset 不了",
        "重置密码",
        "my password is wrong",
        "the password is not working",
        "I changed my password yesterday",
        "password reset please",
        "we will never ask for your password.",
        "password, please?",
        "passwords are case-sensitive",
        "spin the wheel",
        "password_hash and password-reset are column names",
        "Choose a new login password (8-20 characters)",
        "pin it to the top",
        "Password:",
    ],
)
def test_ordinary_words_after_a_password_word_stay(text):
    assert mask(text) == Masked(text)


# --- everything together ------------------------------------------------------------


def test_mixed_language_message():
    text = "您好, my card is 4111-1111-1111-1111，验证码 is 654321，密码：abc123 thanks"
    masked = mask(text)
    assert (
        masked.text == "您好, my card is ****-****-****-1111，验证码 is ******，密码：****** thanks"
    )
    assert masked.kinds == {"card", "otp", "password"}
    assert masked.warnings("en") == (
        SHARE_WARNINGS["otp"]["en"],
        SHARE_WARNINGS["card"]["en"],
        SHARE_WARNINGS["password"]["en"],
    )


@pytest.mark.parametrize(
    "text",
    [
        "金额88.00元，手续费¥5.5，共¥500",
        "I paid $1,234.56 on 2024-05-01 at 12:30",
        "转账2024/05/01到账，手机13812345678",
        "my number is +86 138 1234 5678",
        "tx-12345678 and tx_3f9a1c2b7d4e failed",
        "订单 550e8400-e29b-41d4-a716-446655440000",
        "room 1234, floor 12, 3 items",
        "2024年5月1日 下午3点",
        "",
        "好的，谢谢！Thanks :)",
    ],
)
def test_ordinary_content_is_left_alone(text):
    masked = mask(text)
    assert masked.text is text
    assert masked.kinds == frozenset()


def test_every_kind_has_texts_in_both_languages():
    for kind in KINDS:
        assert share_warning(kind, "zh") and share_warning(kind, "en")
    for asked in ("otp", "password"):
        assert ask_explanation(asked, "zh") and ask_explanation(asked, "en")


def test_the_module_texts_pass_their_own_rules():
    texts = [
        t
        for by_lang in [*SHARE_WARNINGS.values(), *ASK_EXPLANATIONS.values()]
        for t in by_lang.values()
    ]
    for text in texts:
        assert mask(text).text == text
        assert asks_for_secret(text) is None, text


# --- properties -----------------------------------------------------------------------

DIGITS = "0123456789"
FULL_WIDTH = str.maketrans(DIGITS, "０１２３４５６７８９")


@st.composite
def cards(draw: st.DrawFn, separators: tuple[str, ...] = ("", " ", "-")) -> str:
    """A Luhn-valid number, in one run or in groups of four joined by a separator."""
    size = draw(st.integers(13, 19))
    number = luhn_complete(draw(st.text(DIGITS, min_size=size - 1, max_size=size - 1)))
    sep = draw(st.sampled_from(separators))
    if sep:
        groups = [number[i : i + 4] for i in range(0, size, 4)]
        if len(groups[-1]) < 3:  # no layout ends in a group of 1-2 digits
            groups[-2:] = [groups[-2] + groups[-1]]
        number = sep.join(groups)
    return number.translate(FULL_WIDTH) if draw(st.booleans()) else number


ids = st.text(DIGITS, min_size=17, max_size=17).map(id_complete)
WORDS = [
    "验证码", "校验码", "动态码", "code", "OTP", "passcode", "error code", "密码", "口令",
    "password", "pwd", "PIN", "is", "是", "为", "tx", "tx-", "¥", "$", "元", "年", "+", "_",
    "a", "X", "x", "*", "**", "卡号", "card", "my", "wrong", "reset", ".", "。", "，", "：",
    ":", "=", "\n", "　", "\u00a0", "－", "ｘ",
]  # fmt: skip
fragments = st.one_of(
    cards(),
    ids,
    st.text(DIGITS + "０１２", min_size=1, max_size=22),
    st.sampled_from(WORDS),
    st.text(" -", min_size=1, max_size=2),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4),
)
chat_texts = st.lists(fragments, max_size=14).map("".join)


def ascii_reading(text: str) -> str:
    """The module's documented reading: full-width digits, letters, "+", "-", "_" as
    ASCII, and every space as a space."""
    out = []
    for ch in text:
        if "０" <= ch <= "９" or "Ａ" <= ch <= "Ｚ" or "ａ" <= ch <= "ｚ" or ch in "＋－＿：＝":
            out.append(chr(ord(ch) - 0xFEE0))
        elif ch.isspace() and ch not in "\n\r\x0b\x0c\x85\u2028\u2029":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def glued(text: str, start: int, end: int) -> bool:
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    return bool(
        re.search(r"(?:[A-Za-z_+]|[A-Za-z_]-)\Z", before) or re.match(r"-?[A-Za-z_]", after)
    )


def card_layout(groups: list[str]) -> bool:
    lengths = "-".join(str(len(g)) for g in groups)
    return bool(re.fullmatch(r"\d+|(?:4-)+[3-7]|4-6-[45]", lengths))


def cards_left(text: str) -> list[str]:
    view = ascii_reading(text)
    left = []
    for chain in re.finditer(r"[0-9*]{3,}(?:[ -][0-9*]{3,})*", view):
        if glued(view, chain.start(), chain.end()):
            continue
        groups = re.split(r"[ -]", chain.group())
        for i in range(len(groups)):
            for j in range(i + 1, len(groups) + 1):
                number = "".join(groups[i:j])
                if (
                    number.isdigit()
                    and 13 <= len(number) <= 19
                    and card_layout(groups[i:j])
                    and luhn_valid(number)
                ):
                    left.append(number)
    return left


def ids_left(text: str) -> list[str]:
    view = ascii_reading(text)
    return [
        m.group()
        for m in re.finditer(r"(?<![0-9*])[0-9]{17}[0-9Xx](?![0-9*])", view)
        if id_number_valid(m.group()) and not glued(view, m.start(), m.end())
    ]


@settings(max_examples=300)
@given(chat_texts)
@example(f"code {VISA}")
@example("4111 1111 1111 1111 5500 0000 0000 0004 1111")
@example("password: error code 1234")
def test_masking_is_idempotent(text):
    once = mask(text).text
    assert mask(once).text == once


@settings(max_examples=300)
@given(chat_texts)
def test_masking_only_replaces_characters_with_stars(text):
    masked = mask(text)
    assert len(masked.text) == len(text)
    assert all(m == c or m == "*" for m, c in zip(masked.text, text, strict=True))
    assert (masked.text != text) == bool(masked.kinds)


@settings(max_examples=300)
@given(chat_texts)
@example(f"{VISA} {MASTERCARD}")
def test_no_card_and_no_id_number_is_left(text):
    masked = mask(text).text
    assert cards_left(masked) == []
    assert ids_left(masked) == []


@given(
    st.lists(st.one_of(cards(), ids), min_size=1, max_size=3),
    st.sampled_from([" ", "，", "\n", "卡号"]),
)
def test_every_card_and_id_is_found(numbers, sep):
    masked = mask(sep.join(numbers))
    assert masked.kinds <= {"card", "id_number"} and masked.kinds
    assert cards_left(masked.text) == ids_left(masked.text) == []


grouped_cards = cards(separators=(" ",))


@given(st.lists(grouped_cards, min_size=2, max_size=4), st.text(DIGITS + " ", max_size=12))
@example([VISA[:4] + " 1111 1111 1111", "1234 5678 9001"], "")
def test_cards_written_back_to_back_are_all_masked(numbers, tail):
    masked = mask(" ".join(numbers) + " " + tail).text
    assert cards_left(masked) == []
    assert mask(masked).text == masked


PASSWORD_WORDS = ("password", "passwd", "pwd", "pin", "密码", "口令")


@settings(max_examples=300)
@given(st.text(st.characters(exclude_categories=["Cs"])))
@example("ｐａｓｓｗｏｒｄ")
def test_text_without_digits_or_password_words_is_unchanged(text):
    reading = unicodedata.normalize("NFKC", text).casefold()
    assume(not any(ch in DIGITS for ch in reading))
    assume(not any(word in reading for word in PASSWORD_WORDS))
    assert mask(text) == Masked(text)


ordinary = st.one_of(
    st.decimals(0, 100000, places=2).map(str),
    st.integers(0, 99999).map(lambda n: f"¥{n}"),
    st.dates().map(lambda d: d.isoformat()),
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"tx[-_][0-9a-z]{8,20}", fullmatch=True),
    st.integers(0, 999).map(str),
    st.sampled_from(["转账", "到账了吗", "my transfer", "手续费", "refund", "谢谢", "hello"]),
)


@given(st.lists(ordinary, max_size=8), st.sampled_from(["，", "、", "; ", " and ", "\n"]))
def test_amounts_dates_phones_and_transaction_ids_are_left_alone(parts, sep):
    text = sep.join(parts)
    assert mask(text) == Masked(text)


# --- agents asking for secrets --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("请告诉我验证码", "otp"),
        ("把短信验证码发给我", "otp"),
        ("您收到的验证码是多少？", "otp"),
        ("验证码是什么", "otp"),
        ("麻烦把验证码发过来一下", "otp"),
        ("请提供您的动态码", "otp"),
        ("不要担心，把验证码发给我", "otp"),
        ("能把验证码告诉我吗", "otp"),
        ("我帮您核对一下验证码", "otp"),
        ("我需要您的验证码才能处理", "otp"),
        ("请告诉我验证码，不要告诉别人", "otp"),
        ("收到验证码后发给我", "otp"),
        ("验证码收到了吗，发给我", "otp"),
        ("您是否方便把验证码发给我", "otp"),
        ("对方收到后请把验证码发给我", "otp"),
        ("请把验证码发给我以免被别人盗用", "otp"),
        ("不要担心把验证码发给我", "otp"),
        ("请把支付密码告诉我", "password"),
        ("您的登录密码是多少", "password"),
        ("what is the code you received", "otp"),
        ("What's your OTP?", "otp"),
        ("what code did you get?", "otp"),
        ("tell me your OTP", "otp"),
        ("Tell me the 6-digit verification code", "otp"),
        ("please provide the verification code", "otp"),
        ("Please share your OTP so I can verify you", "otp"),
        ("Read me the code from the SMS", "otp"),
        ("The code, please send it to me", "otp"),
        ("Don't worry, just tell me the code", "otp"),
        ("Don't worry and tell me the code", "otp"),
        ("No, tell me the code", "otp"),
        ("Never mind, tell me the code", "otp"),
        ("Please tell me your code so no one else can use it", "otp"),
        ("If you get the code, send it to me", "otp"),
        ("Send me the code once you receive it", "otp"),
        ("I need your OTP to continue", "otp"),
        ("Could I have the passcode?", "otp"),
        ("I'm asking for your verification code to confirm", "otp"),
        ("Read out the code from the SMS, please", "otp"),
        ("Type the code here in the chat", "otp"),
        ("OTP please", "otp"),
        ("Hi, your OTP, please", "otp"),
        ("send me your password", "password"),
        ("Can I have your password?", "password"),
        ("what's your PIN", "password"),
        ("ＴＥＬＬ ＭＥ ＹＯＵＲ ＯＴＰ", "otp"),
        ("您好！请告诉我验证码。", "otp"),
    ],
)
def test_requests_for_a_code_or_password_are_spotted(text, kind):
    assert asks_for_secret(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        "请勿向任何人透露验证码",
        "验证码请勿告诉他人",
        "我们的工作人员不会向您索要验证码或密码",
        "工作人员绝不会问您要密码",
        "如果有人向您索要验证码，请立即挂断",
        "冒充客服索要验证码的都是骗子",
        "索要验证码的都是骗子",
        "验证码告诉别人会很危险",
        "验证码千万不要透露给他人",
        "请核对验证码是否正确",
        "请在App中输入验证码完成验证",
        "验证码已发送至您的手机，请注意查收",
        "收到验证码后请告诉我",
        "请告诉我您是否收到了验证码",
        "验证码收到了吗？",
        "验证码需要在5分钟内输入",
        "验证码是6位数字",
        "不好意思让您久等了",
        "never share your code with anyone",
        "we will never ask for your password",
        "Do not share your OTP.",
        "Never tell anyone your verification code, not even us.",
        "Our staff will never ask you to send us your code.",
        "If anyone asks for your code, do not give it",
        "Share your OTP with no one",
        "Never, ever share your OTP",
        "Our staff will never, under any circumstances, ask you to share your code",
        "Tell me when you receive the code",
        "Let me know if the code arrives",
        "We have sent you a verification code",
        "Please enter the code in the app",
        "What is the error code?",
        "Tell me the promo code you used",
        "Have you received the code?",
        "Please reset your password in the app",
        "The first login on a new device asks for an SMS code",
        "tap Try a voice code and we call you to read the code",
        "Anyone claiming to be support, the police or a courier who asks you to read out a code is a scammer.",
        "自称客服、警察并要求您转账或提供验证码的，几乎都是诈骗。",
        "You can change your PIN in Settings",
    ],
)
def test_advice_and_ordinary_messages_are_not_requests(text):
    assert asks_for_secret(text) is None


ZH_REQUESTS = ["请告诉我{}", "把{}发给我", "您的{}是多少", "麻烦提供一下{}", "{}报一下"]
ZH_ADVICE = ["请勿向任何人透露{}", "我们不会索要您的{}", "{}千万不要告诉别人", "请在App中输入{}"]
EN_REQUESTS = [
    "tell me your {}",
    "what is the {} you received",
    "please share your {}",
    "send me the {}",
]
EN_ADVICE = [
    "never share your {} with anyone",
    "we will never ask for your {}",
    "do not tell anyone your {}",
]
ZH_NOUNS = {
    "验证码": "otp",
    "短信验证码": "otp",
    "校验码": "otp",
    "支付密码": "password",
    "口令": "password",
}
EN_NOUNS = {
    "code": "otp",
    "verification code": "otp",
    "OTP": "otp",
    "password": "password",
    "PIN": "password",
}
GREETINGS = ["", "您好，", "Hi, ", "为了核实身份，", "To verify your identity, "]


@given(
    st.sampled_from(GREETINGS),
    st.one_of(
        st.tuples(st.sampled_from(ZH_REQUESTS), st.sampled_from(sorted(ZH_NOUNS.items()))),
        st.tuples(st.sampled_from(EN_REQUESTS), st.sampled_from(sorted(EN_NOUNS.items()))),
    ),
)
def test_requests_are_spotted_whatever_the_noun_and_greeting(greeting, template_and_noun):
    template, (noun, kind) = template_and_noun
    assert asks_for_secret(greeting + template.format(noun)) == kind


@given(
    st.sampled_from(GREETINGS),
    st.one_of(
        st.tuples(st.sampled_from(ZH_ADVICE), st.sampled_from(sorted(ZH_NOUNS))),
        st.tuples(st.sampled_from(EN_ADVICE), st.sampled_from(sorted(EN_NOUNS))),
    ),
)
def test_advice_is_never_flagged_whatever_the_noun_and_greeting(greeting, template_and_noun):
    template, noun = template_and_noun
    assert asks_for_secret(greeting + template.format(noun)) is None
