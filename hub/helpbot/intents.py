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
    r"转账状态|交易状态|查.{0,4}(转账|交易|付款)|到哪了|处理中|"
    r"where('?s|\s+is)\s+(my|the)\s+(money|transfer|payment)|"
    r"(money|transfer|payment|it)\b.{0,30}\b(not arrived|hasn'?t arrived|not received|never arrived|"
    r"stuck|pending|still processing|not come through)|"
    r"status of (my|the) (transfer|payment|transaction)|track (my|the) (transfer|payment)|"
    r"(has|did) (my|the) (transfer|payment|money) (arrive|go through|come through)"
)
_CHOICE = re.compile(
    r"^(?:第\s*)?([1-9一二三四五六七八九])\s*(?:笔|个|条|项)?$|"
    r"^(?:the\s+|number\s+|no\.?\s*|#)?([1-9])(?:st|nd|rd|th)?(?:\s+one)?$|"
    r"^(?:the\s+)?(first|second|third|last)(?:\s+one)?$"
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
