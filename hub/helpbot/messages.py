"""Everything the bot says, in Chinese and English, by key.

Kept apart from the dialogue logic so that wording can change (or a language be
added) without touching the state machine.
"""

from __future__ import annotations

from hub.helpbot import brand

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
        "zh": "您好，我是{brand}智能助手，关于{topic}的问题可以直接问我，例如{examples}。需要人工服务时，随时回复「转人工」。",
        "en": 'Hello, I\'m the {brand} help assistant. Ask me anything about {topic}, for example {examples}. Reply "talk to a person" at any time to reach an agent.',
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
        "包括自称客服、银行或警察的人。{brand}的工作人员绝不会索要验证码或密码，也不会发链接让您登录。\n"
        "如果已经说出验证码或点了链接，请马上：\n"
        "1. 修改登录密码和支付密码；\n"
        "2. 在「账户与安全」→「登录设备」中移除不认识的设备；\n"
        "3. 联系安全专员（或拨打 24 小时热线 {support_phone}），我们可以先冻结账户，保护您的资金。\n"
        "详细说明：{link}",
        "en": "Scam warning: verification codes, your login password and payment PIN are for you "
        "alone, in the app. Anyone who asks for them is a scammer, even someone claiming to be "
        "support, a bank or the police. {brand} staff never ask for codes or passwords, and "
        "never send links to log in.\n"
        "If you already gave a code away or tapped a link, right now:\n"
        "1. Change your login password and payment PIN;\n"
        "2. Remove devices you don't know in Account & security → Devices;\n"
        "3. Talk to our security team (or call {support_phone}, open 24 hours): we can freeze "
        "the account to keep your money safe.\n"
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
    "fraud_again": {
        "zh": "请先按上面的防骗提醒操作：修改登录密码和支付密码，移除不认识的登录设备。",
        "en": "Please follow the scam warning above first: change your login password and payment "
        "PIN, and remove devices you don't know.",
    },
    "pick_article": {
        "zh": "我不太确定您问的是哪一个，是下面这些吗？点一下就行，也可以换个说法或转人工：",
        "en": "I'm not quite sure which one you mean. Is it one of these? Tap one, say it in other words, or talk to a person:",
    },
    "other_article": {
        "zh": "那换个方向，也许是这个问题：",
        "en": "Then maybe it is this instead:",
    },
    "repeat": {
        "zh": "「{title}」的步骤我刚才已经发过了，看来还没解决。可以说说卡在哪一步，或者转人工客服帮您处理。",
        "en": 'I already sent "{title}" above, so it seems that did not solve it. Tell me which step you are stuck at, or talk to a person.',
    },
    "failed_personal": {
        "zh": "我查到您最近一笔失败的付款：{when} {amount} 给 {name}，原因：{reason}。",
        "en": "I found your latest failed payment: {when}, {amount} to {name}. Reason: {reason}.",
    },
    "balance_short": {
        "zh": "您现在的余额是 {balance}，还差 {short}。",
        "en": " Your balance is now {balance}, {short} short of it.",
    },
    "no_failed_payment": {
        "zh": "您最近没有失败的付款记录。如果付款页面报错但账单里没有这笔，多半是没有提交成功，可以重新付款。",
        "en": "I see no failed payment on your account lately. If the app showed an error but the payment is not in Transactions, it was not submitted: you can pay again.",
    },
    "tx_found_none": {
        "zh": "没有找到符合的交易（{what}）。这是您最近的交易：",
        "en": "I found no transaction matching {what}. Here are your recent ones:",
    },
    "account_ok": {
        "zh": "您的账户（{name}）已注册，状态正常。",
        "en": "Your account ({name}) is registered and in good standing.",
    },
    "account_frozen": {
        "zh": "您的账户（{name}）目前已被冻结{since}，原因：{reason}。解冻需要安全专员核实身份，回复「转人工」即可。",
        "en": 'Your account ({name}) is frozen{since}; reason: {reason}. A security specialist has to verify you to unfreeze it: reply "talk to a person".',
    },
    "account_none": {
        "zh": "您还没有开通付款账户，按下面的步骤注册即可。",
        "en": "You have no payment account yet: the steps below open one.",
    },
    "alerts": {
        "zh": "您最近的安全提醒：\n{lines}\n如果其中有不是您本人的操作，请立即修改密码并回复「转人工」。",
        "en": 'Your recent security alerts:\n{lines}\nIf any of these was not you, change your password now and reply "talk to a person".',
    },
    "not_frozen": {
        "zh": "您的账户（{name}）目前没有被冻结，可以正常收付款。",
        "en": "Your account ({name}) is not frozen: you can pay and receive as usual.",
    },
    "no_alerts": {
        "zh": "您的账户最近没有安全提醒，状态正常。",
        "en": "There are no recent security alerts on your account.",
    },
    "summary": {
        "zh": "【小助手摘要】问题：{question}｜已发文章：{articles}｜相关交易：{txs}｜账户：{account}",
        "en": "[Bot summary] Question: {question} | Articles sent: {articles} | Transactions: {txs} | Account: {account}",
    },
    "anything_else": {
        "zh": "还有其他可以帮您的吗？",
        "en": "Is there anything else I can help with?",
    },
}


CHOICES = {
    "feedback": {
        "zh": ["有用", "没用", "转人工"],
        "en": ["Yes, it helped", "No", "Talk to a person"],
    },
    "human": {"zh": ["转人工"], "en": ["Talk to a person"]},
    "repeat": {"zh": ["转人工", "换个问题"], "en": ["Talk to a person", "Ask something else"]},
    "security_offer": {"zh": ["是", "不用了"], "en": ["Yes", "No, thanks"]},
    "topics": {
        "zh": ["转账没到账", "付款失败", "忘记密码", "收不到验证码", "账户安全", "注册账户"],
        "en": [
            "My transfer has not arrived",
            "My payment failed",
            "Forgot my password",
            "No SMS code",
            "Account security",
            "Create an account",
        ],
    },
}
CODE_CHECKLIST = {
    "zh": "收不到验证码时请逐项检查：1. 手机号是注册时的号码；2. 手机有信号、没开飞行模式；"
    "3. 短信没被拦截（看看骚扰拦截/垃圾短信）；4. 等 60 秒再点「重新发送」，或改用语音验证码；"
    "5. 旧号码停用了请先更换绑定手机号。",
    "en": "If the code does not come: 1. it goes to the number you registered with; 2. the phone "
    "has signal and is not in flight mode; 3. texts are not blocked (check the spam filter); "
    '4. wait 60 seconds before "Resend", or ask for a voice code; 5. if the old number no '
    "longer works, change your phone number first.",
}


def choices(key: str, lang: str) -> list[dict[str, str]]:
    """Quick replies: each a button whose `text` the widget sends as the user's message."""
    labels = CHOICES[key]["en" if lang == "en" else "zh"]
    return [{"label": label, "text": label} for label in labels]


def say(key: str, lang: str, **fields: str) -> str:
    """The message `key` in `lang` (Chinese when the language is unknown), filled in; the
    brand's fields ({brand}, {support_email}, {support_phone}) are always available."""
    templates = TEXT[key]
    lang = lang if lang in templates else "zh"
    return templates[lang].format(**{**brand.current().fields(lang), **fields})


def article_link(slug: str, lang: str) -> str:
    """Where the widget shows an article."""
    return HELP_LINK.format(slug=slug, lang=lang)
