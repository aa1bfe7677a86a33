"""What a chat message asks of the bot, beyond a help question.

Each check is a small, conservative pattern test: a false "yes" or "no" costs more
than asking again, so feedback words only count in short messages.
"""

from __future__ import annotations

import re

from hub.helpbot.text import normalize

_PUNCT = re.compile(r"[^\w']+|_+")

_HUMAN = re.compile(
    r"人工|真人|活人|转客服|找客服|要客服|叫客服|接客服|客服在吗|客服呢|客服人员|"
    r"\bhuman\b|\breal person\b|\bagent\b|\brepresentative\b|\boperator\b|\bstaff\b|"
    r"\b(talk|speak|chat)\s+(to|with)\s+(a\s+|an\s+)?(person|someone|somebody|people|support)\b"
)
_NO_ZH = re.compile(
    r"^(?!没问题|没事|不错|没毛病)(没用|没有用|没啥用|没帮助|没有帮助|没帮上|不行|不对|不是|没解决|没有解决|还是不行|还是没用|"
    r"不管用|不好使|没|没有|不|否|错了|不是这个)"
)
_NO_EN = re.compile(
    r"^(no|nope|nah|not really|not helpful|not useful|useless|wrong|"
    r"(it\s+)?(didn'?t|doesn'?t|did not|does not) help|that'?s not it|not what i)"
)
_YES_ZH = re.compile(
    r"^(是|是的|有用|有帮助|帮到了|解决了|已解决|好了|可以了|明白了|懂了|知道了|谢谢|多谢|好的|好|行|嗯|对|"
    r"没问题|没事了|不错)"
)
_YES_EN = re.compile(
    r"^(yes|yeah|yep|yup|ok|okay|sure|thanks|thank you|thx|it did|it helped|that helped|"
    r"helpful|solved|resolved|great|perfect|got it|works|it works)\b"
)
_GREETING = re.compile(
    r"^(你好|您好|哈喽|嗨|在吗|在不在|有人吗|早上好|下午好|晚上好|hi|hello|hey|hiya|good (morning|afternoon|evening))$"
)
_THANKS = re.compile(
    r"^(谢谢|谢谢你|谢谢您|多谢|感谢|thanks|thank you|thank you very much|thx|ty)$"
)
_WHERE_MONEY = re.compile(
    r"钱呢|我的钱|钱去哪|钱没到|没到账|还没到|到账了吗|到账没|到了吗|没收到钱|没收到款|对方没收到|"
    r"(?:他|她|对方|人家|朋友|收款人)(?:说)?(?:还)?(?:没|没有)收到(?!.{0,6}(?:验证码|短信|邮件|code))|"
    r"转账状态|交易状态|查.{0,4}(转账|交易|付款)|到哪了|处理中|"
    r"where('?s|\s+is)\s+(my|the)\s+(money|transfer|payment)|"
    r"(money|transfer|payment|it)\b.{0,30}\b(not arrived|hasn'?t arrived|not received|never arrived|"
    r"stuck|pending|still processing|not come through)|"
    r"\b(?:she|he|they|the payee|my friend)(?: says| said)?(?: she| he| they)?"
    r" (?:hasn'?t|has not|haven'?t|have not|didn'?t|did not|never) (?:got|gotten|get|received|receive)\b"
    r"(?!.{0,20}\b(?:code|codes|sms|text|email|otp)\b)|"
    r"status of (my|the) (transfer|payment|transaction)|track (my|the) (transfer|payment)|"
    r"(has|did) (my|the) (transfer|payment|money) (arrive|go through|come through)"
)
_CHOICE = re.compile(
    r"^(?:第\s*)?([1-9一二三四五六七八九])\s*(?:笔|个|条|项)?$|"
    r"^(?:the\s+|number\s+|no\.?\s*|#)?([1-9])(?:st|nd|rd|th)?(?:\s+one)?$|"
    r"^(?:the\s+)?(first|second|third|last)(?:\s+one)?$"
)
# Fraud: someone asks for, knows or was given a code or password; a link to log in; the
# usual scam words. Kept apart from "I don't get the code" (收不到验证码, "the app asks for
# a code"): a person must ask, know or be told, or a scam must be named.
_SECRET_ZH = r"(?:验证码|校验码|动态码|短信码|动态密码|支付密码|密码|口令|短信里的数字|数字)"
_FRAUD_ZH = re.compile(
    r"诈骗|骗子|被骗|骗了|骗局|冒充|假冒|假客服|钓鱼|中奖|领奖|安全账户|监管账户|刷单|屏幕共享|远程控制|"
    r"(?:可疑|陌生|奇怪|不明)的?(?:短信|链接|网址|电话|来电)|"
    r"(?:短信|邮件|消息|信息|电话).{0,12}(?:链接|网址).{0,12}(?:登录|登陆|验证|领取|填写|输入)|"
    r"(?:点|打开|点开)了?.{0,4}(?:链接|网址)|"
    r"(?:让|叫|要|要求|逼)我.{0,6}(?:说|报|念|读|告诉|发|转发|提供|截图).{0,10}"
    + _SECRET_ZH
    + "|"
    + _SECRET_ZH
    + r".{0,10}(?:(?:告诉|透露|泄露|发给|报给|念给|说给|提供给).{0,3}"
    r"(?:他|她|对方|别人|陌生人|客服|骗子)|(?:告诉|透露|泄露|给)了)|"
    r"(?:有人|陌生人|别人|对方|他|她|他们|客服|骗子|自称).{0,10}(?:索要|索取|问我要|找我要|要我的?|知道|拿到|"
    r"看到|骗走).{0,8}" + _SECRET_ZH + "|"
    r"(?:索要|索取)" + _SECRET_ZH
)
_SECRET_EN = r"(?:code|codes|otp|passcode|password|passwords|pin|verification|sms code)\b"
_SOMEONE_EN = (
    r"(?:someone|somebody|some (?:guy|man|woman|person|one)|a (?:guy|man|woman|person|stranger|caller)"
    r"|stranger|strangers|they|he|she|caller|people|scammers?|an? (?:agent|rep|representative)"
    r"|(?:your|the) (?:staff|support|agent|bank)|support|the police|police)"
)
_FRAUD_EN = re.compile(
    r"\b(?:scam|scams|scammed|scammer|scammers|phishing|fraud|fraudster|fraudulent|impersonat\w*"
    r"|fake (?:support|agent|website|site|link|text|sms|call|app|customer service)"
    r"|won a (?:prize|lottery|reward)|lottery|prize|safe account|remote access|screen ?sharing)\b|"
    r"\b(?:suspicious|strange|weird|unknown) (?:link|text|sms|message|call|email)|"
    r"\blink\b.{0,40}\b(?:log ?in|sign ?in|verify|confirm|enter|claim|update)\b|"
    r"\b" + _SOMEONE_EN + r"\b.{0,40}\b(?:ask(?:s|ed|ing)?|want(?:s|ed)?|request(?:s|ed)?"
    r"|demand(?:s|ed)?|told me to (?:give|send|read|tell|share)|knows?|has|got|stole)\b.{0,30}\b"
    + _SECRET_EN
    + "|"
    r"\bi (?:gave|told|shared|sent|read out|read|forwarded|accidentally gave|accidentally shared)"
    r"\b.{0,30}\b"
    + _SECRET_EN
    + r".{0,30}\b(?:to|with) (?:someone|somebody|a stranger|them|him|her|"
    r"a caller|the caller|a guy|support)\b|"
    r"\bi (?:gave|told|shared|sent|forwarded) (?:someone|somebody|a stranger|them|him|her|a caller"
    r"|the caller|a guy) (?:my |the )?" + _SECRET_EN
)
_TAKEOVER = re.compile(
    r"盗号|被盗|盗刷|被黑|陌生设备|异地登录|(?:陌生人|别人|有人)(?:登录|login|log in)|不是我本人|不是本人|不是我操作|"
    r"不是我付|不是我转|不是我花|"
    r"不是我登录|手机丢|丢了手机|手机掉了|手机被偷|手机被盗|"
    r"\b(?:lost my phone|phone (?:was|got) (?:lost|stolen)|hacked|stolen|compromised|unauthori[sz]ed|not me|wasn't me|unknown device"
    r"|someone (?:else )?logged ?in(?:to)?|logged ?in(?:to)? from (?:another|a new|an unknown))\b"
)
_ZH_DIGITS = "一二三四五六七八九"
_EN_ORDINALS = {"first": 1, "second": 2, "third": 3, "last": -1}


def _compact(text: str) -> str:
    return _PUNCT.sub(" ", normalize(text)).strip()


def wants_human(text: str) -> bool:
    """The user asks for a person (人工, 客服, agent, human, real person...)."""
    return bool(_HUMAN.search(normalize(text)))


def is_no(text: str) -> bool:
    """A short 'that did not help' (没用, 不行, no, didn't help...)."""
    compact = _compact(text)
    if not compact or len(compact) > 24:
        return False
    return bool(_NO_ZH.match(compact.replace(" ", "")) or _NO_EN.match(compact))


def is_yes(text: str) -> bool:
    """A short 'that helped' (有用, 解决了, yes, thanks...), and not a 'no'."""
    compact = _compact(text)
    if not compact or len(compact) > 24 or is_no(text):
        return False
    return bool(_YES_ZH.match(compact.replace(" ", "")) or _YES_EN.match(compact))


def is_greeting(text: str) -> bool:
    """A bare greeting with no question in it."""
    return bool(_GREETING.match(_compact(text)))


def is_thanks(text: str) -> bool:
    """A bare thank-you."""
    return bool(_THANKS.match(_compact(text)))


def asks_where_money(text: str) -> bool:
    """The user asks where a transfer is (我的钱呢, 钱没到账, where is my money...)."""
    return bool(_WHERE_MONEY.search(normalize(text)))


def asks_about_fraud(text: str) -> bool:
    """Phishing or a code given away: someone asks for, knows or was told a code or a
    password (有人让我说验证码, "someone asked for my code"), a link to log in, a prize,
    a "safe account". Not "I don't get the code" (收不到验证码)."""
    folded = normalize(text)
    return bool(_FRAUD_ZH.search(folded) or _FRAUD_EN.search(folded))


def mentions_security(text: str) -> bool:
    """About the account's safety: fraud, or a takeover (被盗, 陌生设备, hacked, not me)."""
    return asks_about_fraud(text) or bool(_TAKEOVER.search(normalize(text)))


_ACCEPT_ZH = re.compile(
    r"^(是|是的|要|需要|好|好的|可以|行|嗯|对|转|转接|麻烦了?|帮我转|请转接?)(吧|的|啊|呀)?$"
)
_ACCEPT_EN = re.compile(
    r"^(yes|yeah|yep|yup|sure|ok|okay|please|connect me|yes please|please do|do it)( please)?$"
)


def accepts_offer(text: str) -> bool:
    """A short "yes" to "shall I connect you?" (是, 好的, 要, yes please); not a thank-you
    or a "got it" (知道了, 谢谢), which acknowledge advice without asking for a person."""
    compact = _compact(text)
    return bool(_ACCEPT_ZH.match(compact.replace(" ", "")) or _ACCEPT_EN.match(compact))


def choice_number(text: str, count: int) -> int | None:
    """The 0-based item a reply like '2', '第二笔' or 'the first one' picks among `count`."""
    match = _CHOICE.match(_compact(text))
    if not match:
        return None
    zh_or_digit, digit, word = match.groups()
    if word:
        index = _EN_ORDINALS[word]
        index = count if index == -1 else index
    else:
        token = zh_or_digit or digit
        index = _ZH_DIGITS.index(token) + 1 if token in _ZH_DIGITS else int(token)
    return index - 1 if 1 <= index <= count else None
