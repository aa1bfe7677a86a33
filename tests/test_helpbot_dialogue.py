"""The help bot's pure dialogue: turns in, replies and decisions out, no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.helpbot.catalog import HelpCenter, load_help_center
from hub.helpbot.dialogue import (
    BotContext,
    BotState,
    BotTurn,
    greeting,
    on_transaction_update,
    respond,
)
from hub.helpbot.intents import (
    accepts_offer,
    asks_about_fraud,
    asks_where_money,
    choice_number,
    is_no,
    is_yes,
    mentions_security,
    wants_human,
)
from hub.helpbot.transactions import describe_transaction, find_transaction_ids

PROCESSING = {
    "transaction_id": "tx_3f9a1c2b7d4e",
    "status": "processing",
    "amount": "1200.50",
    "currency": "CNY",
    "speed": "standard",
    "expected_by": "2025-05-03T06:30:00+00:00",
    "created_at": "2025-05-02T10:00:00+00:00",
    "to_account": "u_bob",
}
FAILED = {
    "transaction_id": "tx_aaaabbbbcccc",
    "status": "failed",
    "reason": "insufficient_balance",
    "amount": "50",
    "currency": "CNY",
    "speed": "instant",
    "created_at": "2025-05-01T10:00:00+00:00",
    "to_account": "u_amy",
}
SUCCEEDED = {
    "transaction_id": "0b5e2a7c-1d3f-4e8a-9b6c-2f4d8e1a3c5b",
    "status": "succeeded",
    "amount": "8",
    "currency": "CNY",
    "speed": "instant",
    "created_at": "2025-04-01T10:00:00+00:00",
    "to_account": "u_cat",
}
TXS = [FAILED, SUCCEEDED, PROCESSING]  # not in date order on purpose
QUESTIONS = Path(__file__).parent / "data" / "help_questions.json"


def talk(messages: list[str], ctx: BotContext, state: BotState | None = None) -> list[BotTurn]:
    """Feed messages one by one, carrying the state through a JSON round trip like the shell."""
    turns = []
    state = state or BotState()
    for text in messages:
        turn = respond(state, text, ctx)
        turns.append(turn)
        state = BotState.from_dict(json.loads(json.dumps(turn.new_state.to_dict())))
    return turns


# --- greeting ---------------------------------------------------------------------------


def test_greeting_in_both_languages_and_defaults() -> None:
    assert "智能助手" in greeting("zh", "arrival") and "到账" in greeting("zh", "arrival")
    assert "assistant" in greeting("en", "security")
    assert greeting() == greeting("zh", "other")
    assert greeting("xx", "weather") == greeting("zh", "other")


# --- articles and feedback --------------------------------------------------------------


def test_answers_with_article_link_and_asks_for_feedback() -> None:
    (turn,) = talk(["忘记密码了怎么办"], BotContext())
    assert not turn.escalate
    assert turn.article == "reset-password"
    assert "/widget/help/reset-password" in turn.replies[0]
    assert "忘记密码如何重置" in turn.replies[0]
    assert "有帮助" in turn.replies[-1]
    assert turn.new_state.awaiting_feedback and turn.new_state.last_slug == "reset-password"


def test_yes_ends_politely() -> None:
    turns = talk(["how do I reset my password", "yes thanks"], BotContext(lang="en"))
    assert turns[1].replies == ["Glad that helped! If anything else comes up, just ask here."]
    assert turns[1].new_state.resolved and not turns[1].escalate
    assert not turns[1].new_state.awaiting_feedback


def test_one_miss_offers_another_article_and_a_person_second_miss_escalates() -> None:
    turns = talk(["收不到验证码", "没用", "忘记密码", "还是不行"], BotContext(topic="account"))
    assert turns[1].new_state.misses == 1 and not turns[1].escalate
    assert turns[1].article and turns[1].article != "sms-code"  # never the same text again
    assert turns[1].replies[1] != turns[0].replies[0]
    assert {"label": "转人工", "text": "转人工"} in turns[1].choices
    assert turns[3].escalate
    assert turns[3].escalate_topic == "account"  # from the article answered last
    assert turns[3].new_state.escalated


def test_a_new_question_instead_of_feedback_is_answered() -> None:
    turns = talk(["忘记密码", "账户被冻结了怎么解冻"], BotContext())
    assert turns[1].article == "account-frozen" and turns[1].new_state.misses == 0


@pytest.mark.parametrize(
    "text", ["转人工", "我要找人工客服", "talk to a person", "real person please", "agent"]
)
def test_asking_for_a_person_escalates_at_once(text: str) -> None:
    (turn,) = talk([text], BotContext(topic="payment"))
    assert turn.escalate and turn.escalate_topic == "payment"
    assert turn.replies


def test_escalation_topic_follows_the_article() -> None:
    turns = talk(["付款失败怎么办", "转人工"], BotContext(topic="other"))
    assert turns[1].escalate_topic == "payment"
    turns = talk(["my account is frozen", "human"], BotContext(lang="en", topic="other"))
    assert turns[1].escalate_topic == "security"
    turns = talk(["怎么联系客服", "转人工"], BotContext(topic="arrival"))
    assert turns[1].escalate_topic == "arrival"  # contact-support says nothing: chat topic


def test_not_confident_offers_the_closest_articles_as_buttons_then_answers_the_pick() -> None:
    turns = talk(["转账"], BotContext(topic="payment"))
    turn = turns[0]
    assert not turn.escalate and "/widget/help/" in turn.replies[0]
    titles = [c["text"] for c in turn.choices]
    assert titles[-1] == "转人工" and len(titles) >= 3
    picked = talk([titles[0]], BotContext(topic="payment"), turn.new_state)[0]
    assert picked.article == turn.new_state.suggested[0] and picked.replies[0].startswith(titles[0])
    # a second unclear message hands over, with a summary for the agent
    again = talk(["转账", "嗯嗯"], BotContext(topic="payment"))
    assert again[1].escalate and again[1].summary and "转账" in again[1].summary


def test_gibberish_is_a_miss_then_escalates() -> None:
    turns = talk(["asdfgh", "qwerty"], BotContext(lang="en"))
    assert not turns[0].escalate and turns[0].new_state.misses == 1
    assert turns[1].escalate and turns[1].escalate_topic == "other"


def test_bot_is_silent_after_escalation() -> None:
    turns = talk(["转人工", "你好"], BotContext())
    assert turns[1].replies == [] and not turns[1].escalate


def test_greeting_and_thanks_are_small_talk() -> None:
    turns = talk(["你好", "谢谢"], BotContext())
    assert not any(t.escalate for t in turns)
    assert turns[1].new_state.resolved


def test_reply_language_follows_the_user() -> None:
    (turn,) = talk(["forgot my password"], BotContext(lang="zh"))
    assert turn.new_state.lang == "en" and "Reset a forgotten password" in turn.replies[0]
    turns = talk(["忘记密码", "no"], BotContext(lang="zh"))
    assert turns[1].new_state.lang == "zh"  # "no" alone does not switch language


def test_empty_message_gets_a_prompt() -> None:
    (turn,) = talk(["   "], BotContext())
    assert turn.replies and not turn.escalate


# --- transactions -----------------------------------------------------------------------


def test_transaction_id_in_text_gives_live_status_and_watches_it() -> None:
    (turn,) = talk(["我的转账 tx_3f9a1c2b7d4e 怎么还没到"], BotContext(transactions=TXS))
    assert "tx_3f9a1c2b7d4e" in turn.replies[0] and "处理中" in turn.replies[0]
    assert "2025-05-03 14:30" in turn.replies[0]  # expected_by in Beijing time
    assert turn.watch_transactions == ["tx_3f9a1c2b7d4e"]
    assert turn.new_state.watched == ("tx_3f9a1c2b7d4e",)


def test_uuid_ids_and_unknown_ids() -> None:
    text = "status of 0B5E2A7C-1D3F-4E8A-9B6C-2F4D8E1A3C5B and tx_deadbeef00"
    (turn,) = talk([text], BotContext(lang="en", transactions=TXS))
    assert any("couldn't find tx_deadbeef00" in r for r in turn.replies)
    assert any("succeeded" in r for r in turn.replies)
    assert turn.watch_transactions == []  # a finished transaction needs no watching


def test_where_is_my_money_offers_recent_transactions_then_picks_one() -> None:
    turns = talk(["我的钱呢", "2"], BotContext(transactions=TXS))
    offer = turns[0].replies[0]
    assert offer.index("tx_3f9a1c2b7d4e") < offer.index("tx_aaaabbbbcccc")  # newest first
    assert turns[0].new_state.offered[0] == "tx_3f9a1c2b7d4e"
    assert "余额不足" in turns[1].replies[0]
    assert turns[1].new_state.offered == ()


def test_where_is_my_money_english_choice_by_word() -> None:
    turns = talk(["where is my money?", "the first one"], BotContext(lang="en", transactions=TXS))
    assert "processing" in turns[1].replies[0] and "Beijing time" in turns[1].replies[0]
    assert turns[1].watch_transactions == ["tx_3f9a1c2b7d4e"]


def test_where_is_my_money_with_one_transaction_answers_directly() -> None:
    (turn,) = talk(["钱没到账"], BotContext(transactions=[PROCESSING]))
    assert "处理中" in turn.replies[0] and turn.watch_transactions == ["tx_3f9a1c2b7d4e"]


def test_where_is_my_money_without_transactions_answers_with_the_article() -> None:
    (turn,) = talk(["钱没到账"], BotContext())
    assert turn.article == "arrival-delay"


def test_transaction_update_follows_up_on_watched_only() -> None:
    state = BotState(lang="en", watched=("tx_3f9a1c2b7d4e",))
    done = {**PROCESSING, "status": "succeeded"}
    turn = on_transaction_update(state, done)
    assert turn.replies and "succeeded" in turn.replies[0]
    assert turn.new_state.watched == ()
    assert on_transaction_update(turn.new_state, done).replies == []
    still = on_transaction_update(state, PROCESSING)
    assert still.new_state.watched == state.watched


def test_describe_transaction_both_languages() -> None:
    zh = describe_transaction(PROCESSING, "zh")
    assert "¥1,200.50" in zh and "普通转账" in zh and "预计 2025-05-03 14:30" in zh
    en = describe_transaction(FAILED, "en")
    assert "failed" in en and "insufficient balance" in en and "¥50.00" in en
    late = describe_transaction(PROCESSING, "en", now=datetime(2025, 5, 4, tzinfo=UTC))
    assert "still processing" in late
    odd = describe_transaction({"transaction_id": "tx_x", "amount": "n/a", "currency": "usd"}, "en")
    assert "n/a USD" in odd


def test_find_transaction_ids() -> None:
    assert find_transaction_ids("交易tx_3f9a1c2b7d4e没到") == ["tx_3f9a1c2b7d4e"]
    assert find_transaction_ids("tx_short tx_toolong" + "a" * 40) == []
    assert len(find_transaction_ids(" ".join(f"tx_{i:012d}" for i in range(5)))) == 3


# --- intents ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["有用", "解决了", "好的谢谢", "yes", "yep that helped", "没问题了"]
)
def test_yes_words(text: str) -> None:
    assert is_yes(text) and not is_no(text)


@pytest.mark.parametrize("text", ["没用", "不行", "还是不行", "no", "nope", "didn't help"])
def test_no_words(text: str) -> None:
    assert is_no(text) and not is_yes(text)


def test_other_intents() -> None:
    assert wants_human("人工") and not wants_human("客服电话多少")
    assert asks_where_money("我的钱呢") and asks_where_money("my transfer is stuck")
    assert not asks_where_money("怎么注册")
    assert choice_number("第二笔", 3) == 1 and choice_number("4", 3) is None
    assert choice_number("last", 3) == 2 and choice_number("hello", 3) is None


# --- state ------------------------------------------------------------------------------


def test_state_round_trips_through_json() -> None:
    state = BotState(lang="en", misses=1, last_slug="refund", offered=("a",), watched=("b",))
    assert BotState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_state_from_bad_dict_is_safe() -> None:
    state = BotState.from_dict({"lang": "xx", "misses": -3, "watched": "tx_1", "offered": [1, "a"]})
    assert state == BotState(offered=("a",))
    assert BotState.from_dict(None) == BotState()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(max_size=80), max_size=5),
    st.sampled_from(["zh", "en"]),
    st.sampled_from(["account", "payment", "arrival", "security", "other"]),
)
def test_any_text_gives_a_valid_turn(messages: list[str], lang: str, topic: str) -> None:
    for turn in talk(messages, BotContext(lang=lang, topic=topic, transactions=TXS)):
        json.dumps(turn.new_state.to_dict())
        assert turn.escalate == (turn.escalate_topic is not None)
        assert turn.escalate_topic in (
            None,
            "account",
            "payment",
            "arrival",
            "security",
            "technical",
            "other",
        )


# --- anti-fraud answers -------------------------------------------------------------------

FRAUD_QUESTIONS = [
    ("有人打电话让我说验证码", "zh"),
    ("客服让我把验证码告诉他", "zh"),
    ("陌生人知道我的验证码", "zh"),
    ("收到中奖短信让我点链接", "zh"),
    ("someone asked for my verification code", "en"),
    ("I got a text with a link asking me to log in", "en"),
]
NOT_FRAUD = [
    "收不到验证码",
    "验证码过期了怎么办",
    "验证码发给我了但是过期了",
    "忘记密码了",
    "the app asks for a code but it never arrives",
    "how do I change my password",
    "客服电话多少",
]
SECURITY_MARKERS = ["账号被盗了", "不是我本人操作的", "有陌生设备登录", "my account was hacked",
                    "it wasn't me", "someone asked for my code", "有人让我说验证码"]  # fmt: skip


@pytest.mark.parametrize(("text", "lang"), FRAUD_QUESTIONS)
def test_fraud_questions_get_the_guidance_and_an_offer_of_the_security_team(text, lang):
    (turn,) = talk([text], BotContext(lang="zh" if lang == "zh" else "en", topic="other"))
    assert asks_about_fraud(text)
    assert not turn.escalate and turn.article == "anti-fraud"
    guidance, offer = turn.replies
    assert f"/widget/help/anti-fraud?lang={lang}" in guidance
    if lang == "zh":
        assert "绝不会索要验证码或密码" in guidance
        assert "修改登录密码" in guidance and "登录设备" in guidance and "安全专员" in guidance
        assert "安全专员" in offer
    else:
        assert "never ask for codes or passwords" in guidance
        assert "Change your login password" in guidance and "Devices" in guidance
        assert "security team" in offer
    assert turn.new_state.handover_topic == "security"


@pytest.mark.parametrize("text", NOT_FRAUD)
def test_code_trouble_is_not_fraud(text):
    assert not asks_about_fraud(text)
    (turn,) = talk([text], BotContext())
    assert turn.article != "anti-fraud" and turn.new_state.handover_topic is None


@pytest.mark.parametrize("reply", ["是", "好的", "要", "yes", "yes please", "转人工"])
def test_one_yes_hands_the_chat_to_the_security_queue(reply):
    turns = talk(["有人冒充客服找我要验证码", reply], BotContext(topic="payment"))
    assert turns[1].escalate and turns[1].escalate_topic == "security"
    assert turns[1].new_state.escalated


@pytest.mark.parametrize("reply", ["知道了，谢谢", "谢谢", "不用了"])
def test_thanks_or_no_to_the_offer_does_not_hand_over(reply):
    turns = talk(["someone asked for my verification code", reply], BotContext(lang="en"))
    assert not turns[1].escalate and turns[1].new_state.handover_topic is None


def test_the_offer_lasts_one_reply():
    turns = talk(["陌生人知道我的验证码", "忘记密码了", "是"], BotContext(topic="other"))
    assert turns[1].article == "reset-password"
    assert not turns[2].escalate


def test_fraud_and_asking_for_a_person_goes_to_security_at_once():
    (turn,) = talk(["someone claiming to be your staff asked for my otp"], BotContext(lang="en"))
    assert turn.escalate and turn.escalate_topic == "security"
    assert "/widget/help/anti-fraud" in turn.replies[0] and "security team" in turn.replies[1]
    (turn,) = talk(["转人工，我的账号被盗了"], BotContext(topic="other"))
    assert turn.escalate and turn.escalate_topic == "security"


def test_no_confident_security_article_means_the_guidance_not_another_article():
    (turn,) = talk(["someone logged into my account and changed my number"], BotContext(lang="en"))
    assert turn.article == "anti-fraud" and turn.new_state.handover_topic == "security"
    # a help center with no security article: never answer with another topic's article
    help_center = HelpCenter(
        a for lang in ("zh", "en") for a in load_help_center().articles(lang)
        if a.topic != "security"
    )  # fmt: skip
    for text in ("我的账号被盗了，钱被转走了", "my account was hacked and my password changed"):
        (turn,) = talk([text], BotContext(help_center=help_center))
        assert turn.article == "anti-fraud" and not turn.escalate, text


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(json.loads(QUESTIONS.read_text(encoding="utf-8"))),
    st.sampled_from(SECURITY_MARKERS),
    st.booleans(),
)
def test_a_security_question_never_gets_another_topics_article(question, marker, first):
    text = f"{marker} {question['q']}" if first else f"{question['q']} {marker}"
    (turn,) = talk([text], BotContext(lang=question["lang"], topic="payment"))
    help_center = load_help_center()
    if turn.article is not None:
        assert help_center.get(turn.article).topic == "security", (text, turn.article)
    if turn.escalate:
        assert turn.escalate_topic == "security", text
    assert turn.article is not None or turn.escalate, text


@given(st.text(max_size=120))
def test_fraud_is_a_kind_of_security_and_the_checks_never_fail(text):
    if asks_about_fraud(text):
        assert mentions_security(text)
    accepts_offer(text)


# --- the customer's own data, quick replies, no repeats, brand -----------------------------

NOW = datetime(2025, 5, 3, 4, 0, tzinfo=UTC)  # 12:00 Beijing time
TO_CAROL = {
    "transaction_id": "tx_carol0000088",
    "status": "succeeded",
    "amount": "88.00",
    "currency": "CNY",
    "speed": "standard",
    "created_at": "2025-05-02T03:00:00+00:00",  # yesterday, Beijing time
    "from_account": "u-me",
    "to_account": "u-carol",
    "from_name": "Me",
    "to_name": "Carol 王",
    "direction": "out",
}
FROM_BOB = {
    "transaction_id": "tx_bob00000200",
    "status": "succeeded",
    "amount": "200.00",
    "currency": "CNY",
    "speed": "instant",
    "created_at": "2025-05-03T01:00:00+00:00",
    "from_account": "u-bob",
    "to_account": "u-me",
    "from_name": "Bob 李",
    "to_name": "Me",
    "direction": "in",
}
FAILED_500 = {
    "transaction_id": "tx_fail0000500",
    "status": "failed",
    "reason": "insufficient_balance",
    "amount": "500.00",
    "currency": "CNY",
    "speed": "instant",
    "created_at": "2025-05-03T03:00:00+00:00",
    "from_account": "u-me",
    "to_account": "u-alice",
    "to_name": "Alice 张",
    "direction": "out",
}
MINE = [TO_CAROL, FROM_BOB, FAILED_500]
ACCOUNT = {"user_id": "u-me", "name": "Me", "balance": "80.00", "frozen": False}


def test_failed_payment_tells_the_real_reason_balance_and_next_step() -> None:
    (turn,) = talk(
        ["付款失败 说我余额不足"], BotContext(transactions=MINE, account=ACCOUNT, now=NOW)
    )
    text = "\n".join(turn.replies)
    assert turn.article == "payment-failed"
    assert "¥500.00" in text and "Alice 张" in text and "充值" in text
    assert "¥80.00" in text and "¥420.00" in text and "u-alice" not in text
    (en,) = talk(["my payment failed"], BotContext(lang="en", transactions=MINE, account=ACCOUNT))
    assert "insufficient balance" in "\n".join(en.replies) and "Top up" in "\n".join(en.replies)


def test_arrival_by_day_amount_and_name_shows_the_name_never_the_id() -> None:
    ctx = BotContext(transactions=MINE, now=NOW)
    (turn,) = talk(["我昨天给王的88块"], ctx)
    assert "tx_carol0000088" in turn.replies[0] and "Carol 王" in turn.replies[0]
    assert "u-carol" not in "\n".join(turn.replies)
    (en,) = talk(
        ["i sent 88 to carol yesterday she says nothing came"],
        BotContext(lang="en", transactions=MINE, now=NOW),
    )
    assert "Carol 王" in en.replies[0]
    # found in the history by the shell although not among the latest
    (far,) = talk(
        ["转给王的88块呢"], BotContext(transactions=[FROM_BOB], found=[TO_CAROL], now=NOW)
    )
    assert "tx_carol0000088" in far.replies[0]


def test_an_incoming_transfer_is_told_as_received() -> None:
    (turn,) = talk(["我的钱呢"], BotContext(transactions=[FROM_BOB, TO_CAROL], now=NOW))
    assert "Bob 李 转给您 ¥200.00" in turn.replies[0] and "-> u-bob" not in turn.replies[0]
    assert [c["text"] for c in turn.choices] == ["1", "2"]
    picked = talk(["1"], BotContext(transactions=[FROM_BOB, TO_CAROL]), turn.new_state)[0]
    assert "Bob 李 转给您的" in picked.replies[0] and "已到账" in picked.replies[0]
    (en,) = talk(["status of tx_bob00000200"], BotContext(lang="en", transactions=MINE))
    assert "from Bob 李 to you" in en.replies[0]


def test_password_and_registration_get_the_account_state_and_the_code_checklist() -> None:
    (turn,) = talk(["密码忘了 验证码短信一直收不到"], BotContext(account=ACCOUNT))
    assert turn.article in ("reset-password", "sms-code") and not turn.escalate
    text = "\n".join(turn.replies)
    assert "状态正常" in text and "60 秒" in text
    frozen = {
        **ACCOUNT,
        "frozen": True,
        "frozen_reason": "velocity",
        "frozen_at": "2025-05-03T01:00:00+00:00",
    }
    (turn,) = talk(["怎么注册"], BotContext(account={}))
    assert "还没有开通" in turn.replies[1]
    (turn,) = talk(["forgot my password"], BotContext(lang="en", account=frozen))
    assert "frozen" in turn.replies[1] and "velocity" in turn.replies[1]


def test_security_shows_recent_alerts_and_the_freeze() -> None:
    alerts = [
        {"alert": "new_device_login", "occurred_at": "2025-05-03T01:00:00+00:00",
         "details": {"device_name": "Pixel 8"}},
    ]  # fmt: skip
    frozen = {**ACCOUNT, "frozen": True, "frozen_reason": "suspicious"}
    (turn,) = talk(["我的账号好像被盗了"], BotContext(account=frozen, alerts=alerts))
    text = "\n".join(turn.replies)
    assert turn.article == "account-security"
    assert "新设备登录" in text and "Pixel 8" in text and "已被冻结" in text


def test_asking_again_never_repeats_the_same_text() -> None:
    turns = talk(["忘记密码", "忘记密码", "忘记密码"], BotContext())
    assert turns[0].article == "reset-password"
    second = "\n".join(turns[1].replies)
    assert turns[0].replies[0] not in second
    third = "\n".join(turns[2].replies)
    assert third != second and turns[0].replies[0] not in third
    assert any(c["text"] == "转人工" for c in turns[2].choices + turns[1].choices)


def test_answers_carry_feedback_buttons_and_the_greeting_topics() -> None:
    from hub.helpbot.dialogue import greeting_choices

    (turn,) = talk(["收不到验证码"], BotContext())
    assert [c["label"] for c in turn.choices] == ["有用", "没用", "转人工"]
    (en,) = talk(["no sms code"], BotContext(lang="en"))
    assert [c["label"] for c in en.choices] == ["Yes, it helped", "No", "Talk to a person"]
    for lang in ("zh", "en"):
        for chip in greeting_choices(lang):
            (t,) = talk([chip["text"]], BotContext(lang=lang))
            assert t.article and not t.escalate, chip


def test_brand_fills_articles_and_bot_texts() -> None:
    from hub.helpbot import brand
    from hub.helpbot.catalog import load_help_center

    before = brand.current()
    try:
        brand.configure(brand.Brand("乐付", "LePay", "help@lepay.example", "400-123-4567"))
        assert "乐付" in greeting("zh") and "LePay" in greeting("en")
        contact = load_help_center().get("contact-support", "en")
        assert contact and "help@lepay.example" in contact.body and "400-123-4567" in contact.body
    finally:
        brand.configure(before)
    for lang in ("zh", "en"):
        for article in load_help_center().articles(lang):
            assert "supporthub" not in (article.body + article.summary).lower()
            assert "{brand}" not in article.body and "{support_" not in article.body
    assert "易币付" in greeting("zh") and "YiBiPay" in greeting("en")


# --- anti-fraud answers with the customer's data, quick replies, no repeats, brand --------


def test_the_fraud_answer_carries_yes_no_buttons_that_work() -> None:
    for lang, text in (("zh", "有人打电话让我说验证码"), ("en", "someone asked for my code")):
        ctx = BotContext(lang=lang, topic="other")
        (turn,) = talk([text], ctx)
        yes, no = [c["text"] for c in turn.choices]
        assert (yes, no) == (("是", "不用了") if lang == "zh" else ("Yes", "No, thanks"))
        assert talk([text, yes], ctx)[1].escalate_topic == "security"
        declined = talk([text, no], ctx)[1]
        assert not declined.escalate and declined.new_state.handover_topic is None


def test_the_fraud_answer_shows_the_alerts_and_freeze_but_never_reassures() -> None:
    alerts = [{"alert": "new_device_login", "occurred_at": "2025-05-03T01:00:00+00:00",
               "details": {"device_name": "Pixel 8"}}]  # fmt: skip
    frozen = {**ACCOUNT, "frozen": True, "frozen_reason": "suspicious"}
    (turn,) = talk(["有人冒充客服找我要验证码"], BotContext(account=frozen, alerts=alerts))
    text = "\n".join(turn.replies)
    assert "Pixel 8" in text and "已被冻结" in text and turn.new_state.handover_topic == "security"
    (calm,) = talk(["有人冒充客服找我要验证码"], BotContext(account=ACCOUNT))
    assert len(calm.replies) == 2 and "没有安全提醒" not in "\n".join(calm.replies)


def test_the_fraud_guidance_is_sent_once_then_pointed_to() -> None:
    turns = talk(["有人打电话让我说验证码", "又有人让我说验证码"], BotContext())
    assert "/widget/help/anti-fraud" in turns[0].replies[0]
    again = "\n".join(turns[1].replies)
    assert turns[0].replies[0] not in again and "防骗提醒" in again
    assert turns[1].new_state.handover_topic == "security"
    assert turns[1].new_state.answered.count("anti-fraud") == 1


def test_the_fraud_hand_over_carries_the_summary() -> None:
    turns = talk(["陌生人知道我的验证码", "是"], BotContext(account=ACCOUNT))
    assert turns[1].escalate and turns[1].escalate_topic == "security"
    assert "陌生人知道我的验证码" in turns[1].summary
    assert load_help_center().get("anti-fraud").title in turns[1].summary


def test_fraud_texts_and_the_anti_fraud_article_use_the_brand() -> None:
    from hub.helpbot import brand

    before = brand.current()
    try:
        brand.configure(brand.Brand("乐付", "LePay", "help@lepay.example", "400-123-4567"))
        for lang, text in (("zh", "有人让我说验证码"), ("en", "someone asked for my code")):
            (turn,) = talk([text], BotContext(lang=lang))
            assert ("乐付" if lang == "zh" else "LePay") in turn.replies[0]
            assert "400-123-4567" in turn.replies[0]
            article = load_help_center().get("anti-fraud", lang)
            assert article and ("乐付" if lang == "zh" else "LePay") in article.body
            assert "400-123-4567" in article.body
    finally:
        brand.configure(before)


def test_a_security_question_asked_again_never_gets_another_topics_article() -> None:
    turns = talk(["我的账号好像被盗了", "我的账号好像被盗了", "我的账号好像被盗了"], BotContext())
    topics = [load_help_center().get(t.article).topic for t in turns if t.article]
    assert turns[0].article == "account-security" and set(topics) == {"security"}
    assert turns[1].article != "account-security"  # another security article, or the guidance


# --- the five problems with the customer's own data, in both languages -----------------

TO_FANG = {
    "transaction_id": "tx_fang00000260",
    "status": "processing",
    "amount": "260.00",
    "currency": "CNY",
    "speed": "standard",
    "expected_by": "2025-05-03T10:00:00+00:00",
    "created_at": "2025-05-02T08:00:00+00:00",
    "to_account": "u-fang",
    "to_name": "王芳 Fang",
    "direction": "out",
}


def test_a_payee_who_says_nothing_came_finds_the_transfer_by_name() -> None:
    for lang, text in (
        ("zh", "我给王芳转的钱她说还没收到"),
        ("en", "I sent money to Fang but she says she hasn't got it"),
    ):
        (turn,) = talk([text], BotContext(lang=lang, transactions=[TO_FANG], now=NOW))
        assert "王芳 Fang" in turn.replies[0] and "¥260.00" in turn.replies[0], turn.replies
        assert "u-fang" not in turn.replies[0]
        # a transfer told still carries a one-tap way to a person
        assert [c["text"] for c in turn.choices] == [("转人工", "Talk to a person")[lang == "en"]]
    # a code that did not come is not a transfer
    for text in ("她说没收到验证码", "she says she never got the sms code"):
        assert not asks_where_money(text), text


def test_registration_gets_the_code_checklist_and_security_says_the_freeze_state() -> None:
    (turn,) = talk(["怎么注册账号啊"], BotContext(account=ACCOUNT))
    text = "\n".join(turn.replies)
    assert turn.article == "register-account" and "状态正常" in text and "60 秒" in text
    (en,) = talk(["my account got hacked"], BotContext(lang="en", account=ACCOUNT))
    assert en.article == "account-security" and "is not frozen" in "\n".join(en.replies)


def test_the_balance_sentence_is_its_own_sentence_in_english() -> None:
    failed = {
        "transaction_id": "tx_fail00000500", "status": "failed", "reason": "insufficient_balance",
        "amount": "500.00", "currency": "CNY", "created_at": "2025-05-02T08:00:00+00:00",
        "to_name": "Shop", "direction": "out",
    }  # fmt: skip
    (turn,) = talk(
        ["my payment failed"], BotContext(lang="en", transactions=[failed], account=ACCOUNT)
    )
    assert "pay again. Your balance is now ¥80.00, ¥420.00 short" in "\n".join(turn.replies)
