"""Everything the bot says, in Chinese and English, by key.

Kept apart from the dialogue logic so that wording can change (or a language be
added) without touching the state machine.
"""

from __future__ import annotations

HELP_LINK = "/widget/help/{slug}?lang={lang}"

TOPIC_NAMES = {
    "account": {"zh": "账户", "en": "your account"},
    "payment": {"zh": "付款", "en": "payments"},
    "arrival": {"zh": "到账", "en": "money arriving"},
    "security": {"zh": "账户安全", "en": "security"},
    "technical": {"zh": "App 使用", "en": "using the app"},
    "feedback": {"zh": "意见反馈", "en": "feedback"},
    "other": {"zh": "其他", "en": "anything else"},
}

TOPIC_EXAMPLES = {
    "account": {
        "zh": "「忘记密码」「怎么换手机号」",
        "en": '"forgot my password", "change my number"',
    },
    "payment": {
        "zh": "「付款失败」「手续费怎么算」",
        "en": '"my payment failed", "what are the fees"',
    },
    "arrival": {
        "zh": "「转账没到账」「多久能到」",
        "en": '"my transfer has not arrived", "how long does it take"',
    },
    "security": {
        "zh": "「账户被冻结」「陌生设备登录」",
        "en": '"my account is frozen", "someone logged in"',
    },
    "technical": {"zh": "「收不到验证码」", "en": '"I don\'t get the SMS code"'},
    "feedback": {"zh": "「我想提个建议」", "en": '"I have a suggestion"'},
    "other": {
        "zh": "「转账没到账」「收不到验证码」",
        "en": '"my transfer has not arrived", "no SMS code"',
    },
}

TEXT: dict[str, dict[str, str]] = {
    "greeting": {
        "zh": "您好，我是智能助手，关于{topic}的问题可以直接问我，例如{examples}。需要人工服务时，随时回复「转人工」。",
        "en": 'Hello, I\'m the help assistant. Ask me anything about {topic}, for example {examples}. Reply "talk to a person" at any time to reach an agent.',
    },
    "answer": {
        "zh": "{title}\n{summary}\n完整步骤：{link}",
        "en": "{title}\n{summary}\nFull steps: {link}",
    },
    "ask_feedback": {
        "zh": "这个回答有帮助吗？请回复「有用」或「没用」；也可以回复「转人工」联系人工客服。",
        "en": 'Did this help? Reply "yes" or "no", or "talk to a person" to reach an agent.',
    },
    "glad": {
        "zh": "很高兴帮到您！如果还有其他问题，随时在这里告诉我。",
        "en": "Glad that helped! If anything else comes up, just ask here.",
    },
    "sorry_retry": {
        "zh": "抱歉没能帮上忙。您可以换个说法再描述一下问题，或回复「转人工」由人工客服为您处理。",
        "en": 'Sorry that did not help. You can describe the problem in other words, or reply "talk to a person" to reach an agent.',
    },
    "not_understood": {
        "zh": "抱歉，我没有理解您的问题。请用一句话描述遇到的情况，例如「转账没到账」「收不到验证码」；或回复「转人工」。",
        "en": 'Sorry, I did not understand. Please describe what happened in one sentence, e.g. "my transfer has not arrived" or "no SMS code", or reply "talk to a person".',
    },
    "escalate_asked": {
        "zh": "好的，正在为您转接人工客服，请稍候。排队期间您可以继续留言，客服接入后会看到全部聊天记录。",
        "en": "Sure, I'm connecting you to an agent. While you wait you can keep writing: the agent will see the whole conversation.",
    },
    "escalate_missed": {
        "zh": "抱歉没能解决您的问题，正在为您转接人工客服，请稍候。",
        "en": "Sorry I couldn't solve this. I'm connecting you to an agent now, please wait a moment.",
    },
    "escalate_unsure": {
        "zh": "这个问题我不太确定，已为您转接人工客服，请稍候。等待期间，这些文章也许有帮助：",
        "en": "I'm not sure I understood, so I'm connecting you to an agent. While you wait, these articles may help:",
    },
    "suggestion": {"zh": "· {title}：{link}", "en": "· {title}: {link}"},
    "greeting_reply": {
        "zh": "您好！请问遇到了什么问题？直接描述即可，例如「转账没到账」「忘记密码」。",
        "en": 'Hi! What can I help you with? Just describe it, e.g. "my transfer has not arrived" or "forgot my password".',
    },
    "thanks_reply": {
        "zh": "不客气！还有其他问题随时告诉我。",
        "en": "You're welcome! Ask here any time.",
    },
    "offer_transactions": {
        "zh": "您最近的交易如下，想查询哪一笔？请回复序号或交易号：",
        "en": "Here are your recent transactions. Which one do you mean? Reply with its number or transaction ID:",
    },
    "tx_not_found": {
        "zh": "没有在您最近的交易中找到 {tx_id}，请核对交易号（在「账单」的交易详情中，以 tx_ 开头）。",
        "en": "I couldn't find {tx_id} among your recent transactions. Please check the ID (in Transactions → details, it starts with tx_).",
    },
    "tx_watching": {
        "zh": "状态有变化时我会在这里第一时间告诉您。",
        "en": "I'll tell you here as soon as its status changes.",
    },
    "tx_update": {"zh": "交易状态更新：{text}", "en": "Transaction update: {text}"},
    "fraud_guidance": {
        "zh": "防骗提醒：验证码、登录密码和支付密码只能由您本人在 App 内使用，任何人向您索要都是诈骗，"
        "包括自称客服、银行或警察的人。我们的工作人员绝不会索要验证码或密码，也不会发链接让您登录。\n"
        "如果已经说出验证码或点了链接，请马上：\n"
        "1. 修改登录密码和支付密码；\n"
        "2. 在「账户与安全」→「登录设备」中移除不认识的设备；\n"
        "3. 联系安全专员，我们可以先冻结账户，保护您的资金。\n"
        "详细说明：{link}",
        "en": "Scam warning: verification codes, your login password and payment PIN are for you "
        "alone, in the app. Anyone who asks for them is a scammer, even someone claiming to be "
        "support, a bank or the police. Our staff never ask for codes or passwords, and never "
        "send links to log in.\n"
        "If you already gave a code away or tapped a link, right now:\n"
        "1. Change your login password and payment PIN;\n"
        "2. Remove devices you don't know in Account & security → Devices;\n"
        "3. Talk to our security team: we can freeze the account to keep your money safe.\n"
        "More: {link}",
    },
    "fraud_offer": {
        "zh": "需要安全专员帮您检查账户吗？回复「是」或点击「转人工」，立即为您转接安全专员。",
        "en": 'Would you like our security team to check your account? Reply "yes" or tap "Talk to '
        'a person" to be connected now.',
    },
    "fraud_connecting": {
        "zh": "正在为您转接安全专员，请稍候。等待期间，请不要再向任何人提供验证码。",
        "en": "I'm connecting you to our security team now. While you wait, don't give a code "
        "to anyone.",
    },
    "anything_else": {
        "zh": "还有其他可以帮您的吗？",
        "en": "Is there anything else I can help with?",
    },
}


def say(key: str, lang: str, **fields: str) -> str:
    """The message `key` in `lang` (Chinese when the language is unknown), filled in."""
    templates = TEXT[key]
    return templates.get(lang, templates["zh"]).format(**fields)


def article_link(slug: str, lang: str) -> str:
    """Where the widget shows an article."""
    return HELP_LINK.format(slug=slug, lang=lang)
