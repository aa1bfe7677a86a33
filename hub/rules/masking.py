"""Secrets in chat text: mask them before the text is stored, pushed or logged, and
spot an agent who asks a customer for one. Chinese and English. Pure: no I/O.

What `mask` hides (each secret character is replaced by "*" where it stands):

- otp: 4-8 digits, in one run or split by single spaces or dashes ("123 456",
  "123-456"), at most `OTP_WINDOW` characters before or after a code word (验证码 校验码
  动态码 短信码 动态密码; code, OTP, passcode in any case) with no sentence end between
  them (。！？!?;； or a line break; not ".", which decimals and "No." use). "error code",
  "promo code" and the like are not code words. Every digit is masked, and so is any
  other number that close to a code word: never leaking the code comes first.
- card: 13-19 digits passing the Luhn check, in one run or in groups of four joined by
  single spaces or dashes (the last group may hold 3-7 digits; the 4-6-5 and 4-6-4
  layouts too). Digits are masked in place and separators kept: "4111 1111 1111 1111"
  becomes "**** **** **** 1111", "4111111111111111" becomes "************1111". The
  last four stay visible unless more digit groups follow the card, which then hides
  all of its digits (the visible four could otherwise form a new number with them).
- id_number: 17 digits and a check character (digit or X) that is right under GB 11643;
  the last four stay visible.
- password: what follows 密码, 口令, PIN码, password, passwd, pwd or PIN, up to a space, a
  Chinese character or full-width punctuation, or the end. Always masked after an
  explicit separator (":", "=", 是, 为; full-width colon too) or right after a Chinese
  word ("密码abc123"); after "is" unless it is an ordinary word ("my password is
  wrong"); otherwise only when it starts with a letter or digit and holds more than
  letters ("password hunter2"; not "password reset", "password (8-20 characters)" or
  "密码 reset"). "password_hash" and "password-reset" are other words.

The number rules skip digits written against letters, which belong to identifiers
("tx-12345678", "order_2024", "A1234"; "OTP123456" is the one exception: the code word
itself), and numbers after "+" (phone country codes). Near a code word, amounts ("88.00",
"¥5000", "5000元"), times and dates ("12:30", "2024-05-01") are not codes. Anywhere else
a number is only ever a card or an ID, so phone numbers, dates, amounts and short
numbers stay.

Full-width input is read as its ASCII twin (digits, Latin letters, ":", "=", "-", "+",
"_") and any Unicode space as a space: the rules run on a same-length copy of the text,
and the original characters are replaced at the same positions.

Guarantees (tested on generated text):
- `mask(t).text` has the length of `t`, and each character is either the original one or
  "*": no whitespace or other normalisation of the output.
- Idempotent: `mask(mask(t).text).text == mask(t).text`.
- No card and no valid ID (as defined above) is left in the output.
- Text with no digit (ASCII or full-width) and no password word comes back unchanged.
- `Masked.kinds` is empty exactly when nothing was masked.

`asks_for_secret` spots a request for a verification code or password (告诉我/发给我/
是多少..., tell me/send me/what is...) unless it is negated, about others, about scams or
about when ("请勿向任何人透露验证码", "we will never ask for your password", "if anyone
asks for your code", "索要验证码的都是骗子", "收到验证码后告诉我"). It reads one sentence
at a time, and negation one clause at a time, so "不要担心，把验证码发给我" is caught; a
request split over two sentences ("验证码收到了吗？发给我") is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["otp", "card", "id_number", "password"]
AskedKind = Literal["otp", "password"]
Lang = Literal["zh", "en"]

KINDS: Final[tuple[Kind, ...]] = ("otp", "card", "id_number", "password")
MASK: Final = "*"
OTP_WINDOW: Final = 24

SHARE_WARNINGS: Final[Mapping[Kind, Mapping[Lang, str]]] = {
    "otp": {
        "zh": "请勿向任何人透露验证码，我们的工作人员绝不会向您索要。",
        "en": "Never share your verification code; our staff will never ask for it.",
    },
    "card": {
        "zh": "请勿在聊天中发送完整银行卡号，我们已自动隐藏。处理问题只需卡号后四位。",
        "en": "Please don't send your full card number in chat; we have hidden it. "
        "The last four digits are all we need.",
    },
    "id_number": {
        "zh": "请勿在聊天中发送完整身份证号，我们已自动隐藏。",
        "en": "Please don't send your full ID number in chat; we have hidden it.",
    },
    "password": {
        "zh": "请勿向任何人透露密码，我们的工作人员绝不会向您索要。",
        "en": "Never share your password; our staff will never ask for it.",
    },
}

ASK_EXPLANATIONS: Final[Mapping[AskedKind, Mapping[Lang, str]]] = {
    "otp": {
        "zh": "消息未发送：工作人员不得索要验证码。验证码只能由客户本人在 App 内输入，"
        "请改为引导客户在 App 中完成验证。",
        "en": "Message not sent: staff must never ask for a verification code. Customers "
        "enter codes only in the app themselves; guide them to verify there instead.",
    },
    "password": {
        "zh": "消息未发送：工作人员不得索要密码。请引导客户在 App 中自行重置或验证。",
        "en": "Message not sent: staff must never ask for a password. Guide the customer "
        "to reset or verify it in the app themselves.",
    },
}


@dataclass(frozen=True, slots=True)
class Masked:
    text: str
    kinds: frozenset[Kind] = frozenset()

    def warnings(self, lang: Lang) -> tuple[str, ...]:
        """The warning for each kind found, in `KINDS` order."""
        return tuple(SHARE_WARNINGS[kind][lang] for kind in KINDS if kind in self.kinds)


def share_warning(kind: Kind, lang: Lang) -> str:
    return SHARE_WARNINGS[kind][lang]


def ask_explanation(kind: AskedKind, lang: Lang) -> str:
    return ASK_EXPLANATIONS[kind][lang]


def mask(text: str) -> Masked:
    """`text` with its secrets replaced by "*", and the kinds of secret found."""
    kinds: set[Kind] = set()
    while True:
        # Until nothing changes, so that the result is a fixed point and masking is
        # idempotent by construction. One pass almost always suffices; another is needed
        # when a masked password swallowed a word that held a rule back ("password: error
        # code 1234"). Each pass that finds something adds a "*", so the loop ends.
        text, found = _mask_once(text)
        if not found:
            return Masked(text, frozenset(kinds))
        kinds |= found


def asks_for_secret(text: str) -> AskedKind | None:
    """The kind of secret `text` asks the reader to give away, or None."""
    view = _view(text)
    for start, end in _sentences(view):
        sentence = view[start:end]
        kind = _zh_request(sentence) or _en_request(sentence)
        if kind is not None:
            return kind
    return None


# --- the view: a same-length ASCII reading of full-width characters and spaces ---------


_FULL_WIDTH_AS_ASCII = (
    "０１２３４５６７８９：＝－＋＿"
    "ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ"
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ"
)
_SPACES = "\x1c\x1d\x1e\x1f\xa0\u1680\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
_LINE_BREAKS = "\x85\u2028\u2029"


def _view_table() -> dict[int, int]:
    ascii_twins = "".join(chr(ord(ch) - 0xFEE0) for ch in _FULL_WIDTH_AS_ASCII)
    return str.maketrans(
        _FULL_WIDTH_AS_ASCII + _SPACES + _LINE_BREAKS,
        ascii_twins + " " * len(_SPACES) + "\n" * len(_LINE_BREAKS),
    )


_VIEW: Final = _view_table()


def _view(text: str) -> str:
    return text.translate(_VIEW)


Span = tuple[int, int]
_FLAGS: Final = re.IGNORECASE | re.ASCII
_SENTENCE_END = re.compile(r"[。！？!?;；\n\r\v\f]|\.(?=\s|$)")
_CLAUSE_END = re.compile(r"[,，、]")


def _sentences(view: str) -> Iterator[Span]:
    start = 0
    for end in _SENTENCE_END.finditer(view):
        yield start, end.start()
        start = end.end()
    yield start, len(view)


# --- numbers --------------------------------------------------------------------------

# Runs of digits and "*": masked digits stay in their run, so masking never splits or
# joins runs and a second pass sees the same numbers as the first.
_RUN = re.compile(r"[0-9*]+")
_GLUED_BEFORE = re.compile(r"(?:[A-Za-z_+]|[A-Za-z_]-)\Z")
_GLUED_AFTER = re.compile(r"[A-Za-z_]|-[A-Za-z_]")
_DIGITS = frozenset("0123456789")


def _glued_before(view: str, start: int) -> bool:
    return _GLUED_BEFORE.search(view, max(0, start - 2), start) is not None


def _glued_after(view: str, end: int) -> bool:
    return _GLUED_AFTER.match(view, end) is not None


def _chains(view: str, min_run: int) -> list[list[Span]]:
    """Runs of at least `min_run` characters, grouped where single spaces or dashes join
    them; a shorter run ends a chain."""
    chains: list[list[Span]] = []
    chain: list[Span] = []
    for run in _RUN.finditer(view):
        start, end = run.span()
        joined = chain and start - chain[-1][1] == 1 and view[start - 1] in " -"
        if end - start < min_run or not joined:
            if chain:
                chains.append(chain)
            chain = []
        if end - start >= min_run:
            chain.append((start, end))
    if chain:
        chains.append(chain)
    return chains


def _digit_positions(view: str, spans: Iterable[Span]) -> list[int]:
    return [i for start, end in spans for i in range(start, end) if view[i] in _DIGITS]


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"
_ID_NUMBER = re.compile(r"(?<![0-9*])[0-9]{17}[0-9Xx](?![0-9*])")


def id_number_valid(candidate: str) -> bool:
    """17 digits and the GB 11643 check character (digit or X, either case)."""
    if len(candidate) != 18 or not candidate[:17].isascii() or not candidate[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(candidate[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == candidate[17].upper()


def _id_numbers(view: str) -> list[Span]:
    return [
        m.span()
        for m in _ID_NUMBER.finditer(view)
        if id_number_valid(m.group())
        and not _glued_before(view, m.start())
        and not _glued_after(view, m.end())
    ]


def _card_layout(lengths: list[int]) -> bool:
    if len(lengths) == 1:
        return True
    if lengths in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(n == 4 for n in lengths[:-1]) and 3 <= lengths[-1] <= 7


def _card_candidates(view: str, chain: list[Span], taken: list[Span]) -> list[Span]:
    """(first, last) run indexes of the sub-chains that read as a card, longest first."""
    found: list[tuple[int, int, int]] = []
    for first in range(len(chain)):
        lengths: list[int] = []
        for start, end in chain[first:]:
            if "*" in view[start:end] or any(s < end and start < e for s, e in taken):
                break
            lengths.append(end - start)
            if sum(lengths) > 19:
                break
            digits = "".join(view[s:e] for s, e in chain[first : first + len(lengths)])
            if len(digits) >= 13 and _card_layout(lengths) and luhn_valid(digits):
                found.append((-len(digits), first, first + len(lengths) - 1))
    return [(first, last) for _, first, last in sorted(found)]


def _pick_cards(view: str, chain: list[Span], taken: list[Span]) -> list[Span]:
    """Longest first, then leftmost; cards never overlap."""
    chosen: list[Span] = []
    for first, last in _card_candidates(view, chain, taken):
        if all(last < other_first or other_last < first for other_first, other_last in chosen):
            chosen.append((first, last))
    return chosen


def _cards(view: str, taken: list[Span]) -> Iterator[list[int]]:
    for chain in _chains(view, min_run=3):
        if _glued_before(view, chain[0][0]) or _glued_after(view, chain[-1][1]):
            continue
        for first, last in _pick_cards(view, chain, taken):
            positions = _digit_positions(view, chain[first : last + 1])
            ends_chain = last == len(chain) - 1
            yield positions[:-4] if ends_chain else positions


# --- verification codes ---------------------------------------------------------------

_OTP_WORD = re.compile(
    r"验证码|校验码|动态码|短信码|动态密码|(?<![A-Za-z])(?:otp|passcode|code)s?(?![A-Za-z])",
    _FLAGS,
)
# A code word after one of these names some other code.
_NOT_OTP_QUALIFIER = re.compile(
    r"(?<![A-Za-z])(?:error|err|status|response|reason|return|exit|zip|postal|post|area"
    r"|country|dial|dialing|promo|promotion|promotional|coupon|discount|voucher|gift|invite"
    r"|invitation|referral|redeem|redemption|qr|bar|swift|bic|bank|branch|sort|routing"
    r"|tracking|reference|ref|order|product|item|sku|merchant|transaction|source|html)"
    r"[ _-]?\Z",
    _FLAGS,
)
_TERMINATOR = re.compile(r"[。！？!?;；\n\r\v\f]")
_NUMBER_BEFORE = re.compile(
    r"(?:[0-9*][.,:/]|(?:[¥￥$€£]|(?<![A-Za-z])(?:rmb|cny|usd|hkd|eur|jpy))[ ]?)\Z", _FLAGS
)
_NUMBER_AFTER = re.compile(
    r"[.,:/][0-9]|[ ]?(?:[元块圆角万千百%年月日号时点分秒]"
    r"|(?:yuan|rmb|cny|usd|hkd|eur|jpy|dollars?|kuai|percent)(?![A-Za-z]))",
    _FLAGS,
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}(?:-[0-9]{1,2})?|[0-9]{1,2}-[0-9]{1,2}-[0-9]{4}")


def _otp_words(view: str) -> list[Span]:
    return [
        m.span()
        for m in _OTP_WORD.finditer(view)
        if _NOT_OTP_QUALIFIER.search(view, max(0, m.start() - 16), m.start()) is None
    ]


def _otp_shaped(view: str, start: int, end: int, words: list[Span]) -> bool:
    text = view[start:end]
    if not 4 <= sum(ch in _DIGITS or ch == MASK for ch in text) <= 8:
        return False
    if _DATE.fullmatch(text):
        return False
    if _NUMBER_BEFORE.search(view, max(0, start - 4), start):
        return False
    if _NUMBER_AFTER.match(view, end):
        return False
    if _glued_before(view, start) and all(w_end != start for _, w_end in words):
        return False
    return not (_glued_after(view, end) and all(w_start != end for w_start, _ in words))


def _near(view: str, word: Span, start: int, end: int) -> bool:
    if word[1] <= start:
        gap = view[word[1] : start]
    elif end <= word[0]:
        gap = view[end : word[0]]
    else:
        return False
    return len(gap) <= OTP_WINDOW and _TERMINATOR.search(gap) is None


def _otps(view: str) -> Iterator[list[int]]:
    words = _otp_words(view)
    if not words:
        return
    for chain in _chains(view, min_run=1):
        start, end = chain[0][0], chain[-1][1]
        if _otp_shaped(view, start, end, words) and any(
            _near(view, word, start, end) for word in words
        ):
            yield _digit_positions(view, chain)


# --- passwords ------------------------------------------------------------------------

_CJK = "\u2e80-\u2fff\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
_PASSWORD = re.compile(
    # "password_hash", "password-reset" and "spin" are other words
    r"(?P<word>密码|口令|(?<![A-Za-z_])(?:pin码|password|passwd|pwd|pin)(?![A-Za-z_]|-[A-Za-z]))"
    # atomic: once "is" or ":" is read as a separator it is not re-read as the value
    r"(?P<sep>(?>(?:[ \t]*[:=是为]|[ \t]+is(?![A-Za-z]))*))"
    r"[ \t]*(?P<value>[^\s" + _CJK + r"\U00020000-\U0003ffff]+)",
    _FLAGS,
)
# Chinese needs no space: "密码abc123" gives the password, "密码 reset" does not.
_ALWAYS_SECRET_WORDS = frozenset({"密码", "口令", "pin码"})
_EXPLICIT_SEPARATOR = re.compile(r"[:=是为]")
_PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*", _FLAGS)
_TRAILING_PUNCTUATION = ".,!?;:)]}'\""
# Words that follow "password is" in complaints rather than in disclosures.
_NOT_A_PASSWORD = frozenset(
    """a an the not no never now still also too very so just only wrong incorrect invalid
    correct right expired locked blocked frozen required needed missing empty blank weak
    strong short long reset changed updated set saved stored forgotten lost ok okay fine
    different same case-sensitive what which where how why when that this it mine yours
    for of in on at to and or but being been sent shown hidden displayed working""".split()
)


def _password_value_is_secret(m: re.Match[str]) -> bool:
    value, separator = m["value"], m["sep"]
    if not any(ch.isalnum() for ch in value):
        return False
    if _EXPLICIT_SEPARATOR.search(separator):
        return True
    written_against = m.start("value") == m.end("word")
    if written_against and m["word"].lower() in _ALWAYS_SECRET_WORDS:
        return True
    bare = value.rstrip(_TRAILING_PUNCTUATION)
    if separator.strip():
        return bare.lower() not in _NOT_A_PASSWORD
    # A bare word is followed by a password only when what follows looks like one:
    # "password hunter2" yes; "password reset", "password (8-20 characters)" no.
    return value[0].isalnum() and _PLAIN_WORD.fullmatch(bare) is None


def _passwords(view: str) -> Iterator[list[int]]:
    for m in _PASSWORD.finditer(view):
        if _password_value_is_secret(m):
            yield list(range(*m.span("value")))


# --- one pass -------------------------------------------------------------------------


def _findings(view: str) -> Iterator[tuple[Kind, list[int]]]:
    ids = _id_numbers(view)
    for start, end in ids:
        yield "id_number", list(range(start, end - 4))
    for positions in _cards(view, ids):
        yield "card", positions
    for positions in _otps(view):
        yield "otp", positions
    for positions in _passwords(view):
        yield "password", positions


def _mask_once(text: str) -> tuple[str, frozenset[Kind]]:
    chars = list(text)
    found: set[Kind] = set()
    for kind, positions in _findings(_view(text)):
        for i in positions:
            if chars[i] != MASK:
                chars[i] = MASK
                found.add(kind)
    return ("".join(chars) if found else text), frozenset(found)


# --- requests for secrets -------------------------------------------------------------

_ZH_SECRET = re.compile(
    r"(?P<otp>验证码|校验码|动态码|短信码|动态密码)|(?P<password>密码|口令|pin码)", _FLAGS
)
_ZH_ASK = re.compile(
    r"(?P<question>是多少|是什么|是啥|多少)"
    # "tell me" may also mean "let me know (whether, when)": see _ZH_TELL_EXCUSES
    r"|(?P<tell>告诉|告知|说一下|核对)"
    r"|透露|提供|复述|索要|索取|给我|[问向跟找][您你]要|要一下|我们?需要"
    r"|报(?:一下|给|出|过来)|念(?:一下|给|出)|读(?:一下|给|出)|说(?:出|给)"
    r"|发(?:给|我|过来|一下|出来|送给|到这)",
    _FLAGS,
)
# Phrases that hold a negation character but negate nothing; blanked before looking.
_ZH_BENIGN = re.compile(
    r"不好意思|不客气|不错|不少|不仅|不久|不便|不同|对不起|没关系|没问题|没事|别客气"
    r"|[不别]用?要?必?担心|[不别]要?着急|不要紧|不麻烦"
)
_ZH_NEGATION = re.compile(r"不|勿|别|莫|禁止|严禁|切忌|无需|无须|谨防|警惕|提防|防止|拒绝|没|未")
# Others as the asker ("如有人索要") or the recipient ("透露给他人"); talk of scams
# anywhere in the sentence makes it a warning ("自称客服要求您提供验证码的，都是诈骗").
_ZH_OTHERS = re.compile(r"任何|他人|别人|旁人|陌生人|其他人|第三方|有人|自称")
_ZH_SCAM = re.compile(r"冒充|假冒|骗子|诈骗|骗局|不法分子")
_ZH_RECIPIENT_REACH = 4
_ZH_TELL_EXCUSES = re.compile(r"是否|有没有|有无|收到没|到了没|了吗")  # in the clause
_ZH_TELL_WHEN = re.compile(r"后|时|吗")  # between the code and "tell": "收到验证码后告诉我"
_ZH_NOUN_REACH = 16
_ZH_QUESTION_REACH = 3


def _clause(sentence: str, start: int, end: int) -> Span:
    before = [m.end() for m in _CLAUSE_END.finditer(sentence, 0, start)]
    after = _CLAUSE_END.search(sentence, end)
    return (before[-1] if before else 0), (after.start() if after else len(sentence))


def _blank(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub(lambda m: " " * len(m.group()), text)


def _zh_excused(sentence: str, verb: re.Match[str]) -> bool:
    clause_start, clause_end = _clause(sentence, verb.start(), verb.end())
    before = _blank(_ZH_BENIGN, sentence[clause_start : verb.start()])
    recipient = sentence[verb.end() : min(clause_end, verb.end() + _ZH_RECIPIENT_REACH)]
    clause = sentence[clause_start:clause_end]
    return bool(
        _ZH_NEGATION.search(before)
        or _ZH_OTHERS.search(before + " " + recipient)
        or _ZH_SCAM.search(sentence)
        or (verb["tell"] and _ZH_TELL_EXCUSES.search(clause))
    )


def _zh_secret_for(sentence: str, verb: re.Match[str]) -> AskedKind | None:
    """The kind of the nearest code or password word the verb reaches."""
    best: tuple[int, AskedKind] | None = None
    for noun in _ZH_SECRET.finditer(sentence):
        if noun.end() <= verb.start():
            gap = sentence[noun.end() : verb.start()]
            reach = _ZH_QUESTION_REACH if verb["question"] else _ZH_NOUN_REACH
            if verb["tell"] and _ZH_TELL_WHEN.search(gap):
                continue
        elif noun.start() >= verb.end() and not verb["question"]:
            gap, reach = sentence[verb.end() : noun.start()], _ZH_NOUN_REACH
        else:
            continue
        kind: AskedKind = "otp" if noun["otp"] else "password"
        if len(gap) <= reach and (best is None or len(gap) < best[0]):
            best = (len(gap), kind)
    return best[1] if best else None


def _zh_request(sentence: str) -> AskedKind | None:
    for verb in _ZH_ASK.finditer(sentence):
        if not _zh_excused(sentence, verb):
            kind = _zh_secret_for(sentence, verb)
            if kind is not None:
                return kind
    return None


_EN_SECRET = (
    r"(?<![A-Za-z])(?P<noun>(?P<otp>passcode|otp|code)|password|passwd|pwd|pin)s?(?![A-Za-z])"
)
_DET = r"(?:(?:the|your|ur|that|this|those|these|its|it's|my)\s+)"
_FILL = r"(?:[\w'-]+\s+){0,3}?"
_TO_ME = r"(?:me|us)(?![A-Za-z])"
_EN_ASKS = [
    re.compile(p, _FLAGS)
    for p in (
        # tell me the code; send us your OTP; give it to me: the code
        rf"\b(?:tell|give|send|show|read|text|message|forward|email|dm|share\s+with)\s+"
        rf"(?:(?:it|them)\s+(?:to\s+)?)?{_TO_ME}\s+(?:with\s+)?(?:(?:what|which)\s+)?"
        rf"{_DET}?{_FILL}{_EN_SECRET}",
        # what is the code you received; what's your OTP; what code did you get
        rf"\b(?:what|which)(?:'s|\s+is|\s+was|\s+are|\s+were)\s+{_DET}{_FILL}{_EN_SECRET}",
        rf"\b(?:what|which)\s+{_FILL}{_EN_SECRET}\s+(?:did|do|have|had)\s+you\b",
        rf"\bwhat\s+does\s+{_DET}{_FILL}{_EN_SECRET}\s+say\b",
        # please share your OTP; provide me with the verification code
        rf"\b(?:share|provide|give|tell|read\s+out|repeat|forward|dictate|spell\s+out"
        rf"|paste|type\s+out|reply\s+with|respond\s+with|send\s+over|hand\s+over|disclose"
        rf"|reveal)\s+(?:{_TO_ME}\s+(?:with\s+)?)?{_DET}?{_FILL}{_EN_SECRET}",
        # send the code to me; the code, send it to me
        rf"\bsend\s+{_DET}{_FILL}{_EN_SECRET}\s+(?:over\s+)?(?:to\s+)?"
        rf"(?:{_TO_ME}|this\s+chat|here)",
        rf"{_EN_SECRET}[^.?!]{{0,30}}?\b(?:send|tell|give|read|share|forward)\s+(?:it|them)"
        rf"\s+(?:to\s+|with\s+)?{_TO_ME}",
        # I need your OTP; we'd need to see the code; can I have your password
        rf"\b(?:i|we)(?:'d|'ll|\s+will|\s+would)?\s+(?:need|want|require)\s+"
        rf"(?:to\s+(?:have|get|see|know|check|verify)\s+)?{_DET}?{_FILL}{_EN_SECRET}",
        rf"\b(?:can|could|may)\s+(?:i|we)\s+(?:have|get|see|know|check)\s+"
        rf"{_DET}?{_FILL}{_EN_SECRET}",
        # only we ask: "the app asks for an SMS code" is no request
        rf"\b(?:i|we)(?:'m|'re|\s+am|\s+are|'ll|\s+will|'d|\s+would|\s+must|\s+need\s+to"
        rf"|\s+have\s+to)?\s+ask(?:ing)?\s+(?:you\s+)?for\s+{_DET}?{_FILL}{_EN_SECRET}",
        rf"\b(?:type|paste|write|put|enter|post|drop)\s+{_DET}?{_FILL}{_EN_SECRET}\s+"
        rf"(?:here\s+)?in\s+(?:the|this)\s+(?:chat|conversation|window)",
        # a clause that is only "your OTP please"
        rf"(?:^|(?<=[,，、]))\s*(?:please\s+)?{_DET}?{_FILL}{_EN_SECRET}\s*[,:]?\s*"
        rf"(?:please|pls|plz)\s*(?=$|[,，、])",
    )
]
_EN_BENIGN = re.compile(
    r"(?:don't|dont|do\s+not|never)\s+(?:you\s+)?(?:worry|mind)|no\s+(?:worries|problem|rush)"
    r"|not\s+a\s+problem",
    _FLAGS,
)
_EN_NEGATION = re.compile(
    r"n't\b|n’t\b|\b(?:never|not|no|nobody|none|nothing|neither|nor|without|cannot|avoid"
    r"|refuse|dont|wont|cant|shouldnt|mustnt)\b",
    _FLAGS,
)
_EN_OTHERS = re.compile(
    r"\b(?:anyone|anybody|no[- ]one|nobody|someone|somebody|others|other\s+people|strangers?"
    r"|third[- ]part(?:y|ies))\b",
    _FLAGS,
)
_EN_SCAM = re.compile(
    r"\b(?:scams?|scammers?|fraud|fraudsters?|impostors?|criminals?|phishing)\b", _FLAGS
)
_EN_TO_OTHERS = re.compile(
    r"\s*(?:with|to)\s+(?:no[- ]?one|nobody|anyone|anybody|others|other\s+people|strangers)\b",
    _FLAGS,
)
# A negation cut off by a comma or an aside: "never, ever share", "never, under any
# circumstances, ask". A leading "No," is an answer, not a negation.
_EN_NEGATION_BEFORE_ASIDE = re.compile(
    r"(?:\bnever|\bnot|\bcannot|n't|n’t)\s*[,，、](?:[^,，、]{0,40}[,，、])?\s*\Z", _FLAGS
)
_EN_NOT_THE_CODE = re.compile(r"\b(?:if|when|whether|once|after|as\s+soon\s+as)\b", _FLAGS)


def _en_request(sentence: str) -> AskedKind | None:
    for pattern in _EN_ASKS:
        for ask in pattern.finditer(sentence):
            if not _en_excused(sentence, ask):
                return "otp" if ask["otp"] else "password"
    return None


def _en_excused(text: str, ask: re.Match[str]) -> bool:
    """Negated ("never share your code"), about others ("if anyone asks for your code",
    "share it with no one"), about scams, about another code ("error code") or about
    when ("tell me when the code arrives")."""
    if ask["otp"] and _NOT_OTP_QUALIFIER.search(text, 0, ask.start("noun")):
        return True
    if _EN_SCAM.search(text):
        return True
    clause_start, _ = _clause(text, ask.start(), ask.end())
    up_to_ask = _blank(_EN_BENIGN, text[clause_start : ask.end()])
    return bool(
        _EN_NEGATION.search(up_to_ask)
        or _EN_NEGATION_BEFORE_ASIDE.search(text, 0, clause_start)
        or _EN_OTHERS.search(up_to_ask)
        or _EN_NOT_THE_CODE.search(ask.group())
        or _EN_TO_OTHERS.match(text, ask.end())
    )
