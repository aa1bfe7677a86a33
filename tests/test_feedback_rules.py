"""hub.helpbot.feedback: suggestions and complaints recognised, help questions left alone.

The phrasings below were written for this test and are not in the module's patterns: a
held-out set, Chinese and English, formal and colloquial."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.helpbot import feedback

DEFECTS = [("建议增加夜间模式", "suggestion", "appearance"),
           ("please add a dark mode", "suggestion", "appearance")]  # fmt: skip

SUGGESTIONS = [
    "希望你们以后能支持指纹支付",
    "能不能加个深色模式啊，晚上看着刺眼",
    "可不可以增加一个导出账单的功能",
    "要是能设置转账提醒就好了",
    "给你们提个建议：转账记录可以按月筛选",
    "啥时候出个iPad版本",
    "加个小组件吧，看余额方便",
    "It would be great if I could export my statements as PDF",
    "Could you add Face ID login please?",
    "you guys should add a night mode",
    "I wish the app had a monthly spending summary",
    "feature request: split bills with friends",
    "how about adding a widget for the home screen",
    "pls add english notifications",
]
COMPLAINTS = [
    "你们客服态度太差了",
    "这个app真难用",
    "转账手续费太坑了，我要投诉",
    "什么破软件，天天更新",
    "This is ridiculous, I've been waiting for an hour",
    "Your service is terrible",
    "I'm really disappointed with the new update",
    "I want to file a complaint about the fees",
    "提现手续费好贵啊",
    "the transfer fees are a rip-off",
]
QUESTIONS = [
    "收不到验证码怎么办",
    "能不能增加转账限额",
    "可以提高我的每日额度吗",
    "怎么修改绑定的手机号",
    "我的转账一直在处理中",
    "忘记支付密码了",
    "怎么注册账户",
    "退款多久能到账",
    "账户被冻结了怎么解冻",
    "怎么添加银行卡",
    "How do I reset my password?",
    "my transfer is stuck",
    "How can I add a bank card?",
    "I didn't get the SMS code",
    "Can I raise my daily transfer limit?",
    "Where is my money?",
    "How do I change my phone number",
    "The payment failed, why?",
    "I wish to transfer money to my sister",
    "Is my account safe?",
    "Can you add money to my wallet?",
    "有没有邮箱可以投诉",
    "Where can I file a complaint?",
    "How long does a refund take",
]


@pytest.mark.parametrize(("text", "kind", "theme"), DEFECTS)
def test_the_defect_phrases_are_suggestions(text, kind, theme):
    assert feedback.recognise(text) == feedback.Feedback(kind, theme)


@pytest.mark.parametrize("text", SUGGESTIONS)
def test_suggestions_are_recognised(text):
    got = feedback.recognise(text)
    assert got is not None and got.kind == "suggestion", text


@pytest.mark.parametrize("text", COMPLAINTS)
def test_complaints_are_recognised(text):
    got = feedback.recognise(text)
    assert got is not None and got.kind == "complaint", text


@pytest.mark.parametrize("text", QUESTIONS)
def test_help_questions_are_not_feedback(text):
    assert feedback.recognise(text) is None, text


def test_themes():
    assert feedback.theme_of("转账手续费太坑了") == "fees"
    assert feedback.theme_of("the app keeps crashing, awful") == "reliability"
    assert feedback.theme_of("你们客服态度太差了") == "service"
    assert feedback.theme_of("hmm") == "other"


@given(st.text(max_size=200))
def test_any_text_gives_an_answer_never_an_error(text):
    got = feedback.recognise(text)
    assert got is None or (got.kind in ("suggestion", "complaint") and got.theme)


# --- the hook in the dialogue ------------------------------------------------------------

from hub.helpbot import dialogue  # noqa: E402


@pytest.mark.parametrize(
    ("text", "lang"), [("建议增加夜间模式", "zh"), ("please add a dark mode", "en")]
)
def test_the_dialogue_thanks_records_and_keeps_the_chat(text, lang):
    turn = dialogue.respond(dialogue.BotState(), text, dialogue.BotContext(lang=lang))
    assert turn.feedback == feedback.Feedback("suggestion", "appearance")
    assert turn.replies == [feedback.thanks("suggestion", lang)]
    assert not turn.escalate and turn.article is None


def test_a_complaint_that_asks_for_a_person_is_handed_over_and_recorded():
    turn = dialogue.respond(dialogue.BotState(), "我要投诉，转人工", dialogue.BotContext(lang="zh"))
    assert turn.escalate and turn.feedback is not None and turn.feedback.kind == "complaint"


@pytest.mark.parametrize("text", ["收不到验证码怎么办", "How do I reset my password?"])
def test_help_questions_still_get_answers(text):
    turn = dialogue.respond(dialogue.BotState(), text, dialogue.BotContext())
    assert turn.feedback is None


@pytest.mark.parametrize(
    "text", ["账单页面的字太小了", "The statement page is confusing", "转账记录希望能按月显示"]
)
def test_in_a_feedback_chat_a_remark_is_feedback(text):
    assert feedback.recognise(text, "feedback") is not None
    turn = dialogue.respond(dialogue.BotState(), text, dialogue.BotContext(topic="feedback"))
    assert turn.feedback is not None and not turn.escalate


@pytest.mark.parametrize("text", ["怎么修改绑定的手机号", "How do I reset my password?", "好的"])
def test_in_a_feedback_chat_a_question_is_still_a_question(text):
    assert feedback.recognise(text, "feedback") is None


@pytest.mark.parametrize("text", QUESTIONS)
def test_in_another_topic_a_remark_is_not_feedback(text):
    assert feedback.recognise(text, "payment") is None


@pytest.mark.parametrize("text", ["我的账户被冻结了", "收不到验证码"])
def test_in_a_feedback_chat_a_problem_the_help_center_answers_is_answered(text):
    turn = dialogue.respond(dialogue.BotState(), text, dialogue.BotContext(topic="feedback"))
    assert turn.feedback is None
