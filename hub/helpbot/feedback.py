"""Suggestions and complaints in what customers tell the help bot: recognised (Chinese and
English, colloquial too), thanked for, and handed to the shell to record for the product
team; never an article search, never a hand-off unless the customer asks for a person.

Pure: text in, a `Feedback` (kind and theme) or None out. Conservative like the other
intents: a help question that happens to say "add" or "增加" ("能不能增加转账限额?") is a
question, not a suggestion; a suggestion names the product (a feature, a mode, an option,
the app) or says it is one ("建议", "I suggest", "feature request").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from hub.helpbot.text import normalize

Kind = Literal["suggestion", "complaint"]

# what a suggestion is about: a part of the product
_PRODUCT_ZH = (
    r"(?:功能|模式|选项|按钮|版本|主题|皮肤|界面|语言|设置|提醒|通知|小组件|插件|入口|"
    r"夜间|深色|暗黑|黑暗|字体|指纹|面容|刷脸|快捷|app|App|APP)"
)
_PRODUCT_EN = (
    r"(?:feature|mode|option|button|setting|settings|theme|language|widget|version|"
    r"shortcut|reminder|notification|notifications|dark|night|font|face id|fingerprint|"
    r"support for|ability to|way to|export|filter)"
)
_SUGGEST_ZH = re.compile(
    r"建议|提个?(?:意见|建议)|提议|反馈一下|给你们提|"
    r"希望(?:你们|贵司|贵公司|官方|app|以后|今后|将来|能够?|可以)\S{0,12}"
    rf"(?:增加|添加|加上?|支持|推出|出|上线|做|改|优化){_PRODUCT_ZH}?|"
    rf"(?:能不能|能否|可不可以|可以|是否可以|什么时候|何时|啥时候|咋不|怎么不|为什么不|为啥不)"
    rf"(?:给)?(?:增加|添加|加上?|支持|推出|出|上线|做|开发)(?:个|一个|一下)?\S{{0,12}}{_PRODUCT_ZH}|"
    rf"(?:要是|如果|假如)(?:能|可以|有)\S{{0,16}}(?:就好了|就更好了|多好|会更好|方便)|"
    rf"(?:加|增加|添加|出|搞)(?:个|一个)\S{{0,10}}{_PRODUCT_ZH}(?:吧|呗|啊|呀|嘛)|"
    rf"(?:没有|缺少|缺个|少了)\S{{0,10}}{_PRODUCT_ZH}(?:不方便|太不方便|好不方便)"
)
_SUGGEST_EN = re.compile(
    r"\bsuggest(?:ion|ions|ing)?\b|\bfeature request\b|\brequest a feature\b|"
    r"\b(?:my|an|one|small|quick) idea\b|\bidea for (?:you|the app|your app)\b|"
    rf"\b(?:please|pls|plz|kindly|do) (?:add|bring|make|introduce|support|offer)\b|"
    rf"\b(?:can|could|would|will) (?:you|u|you guys|your team) (?:please )?"
    rf"(?:add|make|introduce|build|bring|offer|support)\b.{{0,40}}{_PRODUCT_EN}|"
    rf"\byou (?:guys )?(?:should|need to|ought to) (?:add|make|introduce|build|support|offer|have)\b|"
    r"\b(?:it|that) (?:would|'d) be (?:nice|great|good|cool|helpful|awesome|better) (?:if|to)\b|"
    r"\bit'd be (?:nice|great|good|cool|helpful|awesome|better) (?:if|to)\b|"
    r"\bwould (?:love|like) (?:to see|it if|if you|a|an|the app to)\b.{0,40}"
    rf"(?:{_PRODUCT_EN}|app|add)|"
    r"\bi wish (?:the|your|you|there (?:was|were)|it)\b|"
    rf"\bwhy (?:don'?t|doesn'?t|can'?t|isn'?t there) (?:you|the app|your app|there)\b.{{0,40}}{_PRODUCT_EN}|"
    r"\bhow about (?:adding|a|an)\b.{0,30}" + _PRODUCT_EN + r"|"
    r"\b(?:dark|night) mode (?:please|pls|plz|would|when|soon)\b|"
    r"\bany plans? (?:to|for) (?:add|support|a|an)\b"
)
# the bare word: "I want to complain" is a complaint, "where can I complain?" a question
_COMPLAIN_WORD = re.compile(r"投诉|\bcomplain(?:t|ts|ing)?\b|\bfile a complaint\b")
_COMPLAIN_ZH = re.compile(
    r"差评|给差评|举报你们|太差|很差|真差|好差|差劲|垃圾|太烂|很烂|真烂|"
    r"不满意|很不满|非常不满|太失望|很失望|失望透顶|太坑|坑人|坑爹|"
    r"态度(?:太|很|真|好)?(?:差|恶劣|不好)|服务(?:太|很|真|好)?(?:差|烂)|"
    r"(?:太|很|真|好|特别|超级)难用|不好用|体验(?:太|很|真|好|极)?差|"
    r"什么破|破(?:app|软件|系统)|效率(?:太|真|好)?低|(?:太|好|真|特别)贵|贵死了|"
    r"(?:太|真|好)(?:让人|叫人)?(?:生气|气人|恼火|无语)|受不了你们|忍不了"
)
_COMPLAIN_EN = re.compile(
    r"\bterrible\b|\bawful\b|\bhorrible\b|"
    r"\bthe worst\b|\bworst (?:app|service|experience)\b|\bridiculous\b|\bunacceptable\b|"
    r"\bdisappoint(?:ed|ing)\b|\bdisgusted\b|\bfed up\b|\bsucks\b|\brubbish\b|\bgarbage\b|"
    r"\bjoke of an\b|\b(?:not|never) happy with\b|\bunhappy with\b|\bpoor service\b|"
    r"\b(?:so|very|really) rude\b|\bwaste of (?:time|money)\b|\bthis app is (?:useless|bad|slow)\b|"
    r"\bangry\b|\bfrustrat(?:ed|ing)\b|\bpathetic\b|\bappalling\b|\btoo expensive\b|"
    r"\boverpriced\b|\brip-?off\b"
)

# (theme, pattern over the normalized text), first match wins
THEMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("appearance", re.compile(
        r"夜间|深色|暗黑|黑暗模式|主题|皮肤|字体|字太小|颜色|界面|\bdark\b|\bnight mode\b|"
        r"\btheme\b|\bfont\b|\bcolou?r\b|\bdesign\b|\blayout\b|\bui\b")),
    ("fees", re.compile(r"手续费|费用|收费|扣费|\bfees?\b|\bcharges?\b|\bcommission\b")),
    ("limits", re.compile(r"限额|额度|\blimits?\b")),
    ("reliability", re.compile(
        r"闪退|崩溃|卡死|打不开|出错|报错|bug|\bcrash\w*|\bfreez\w*|\berrors?\b|\bbroken\b")),
    ("speed", re.compile(r"慢|太久|好久|速度|卡顿|\bslow\w*|\bspeed\b|\btakes? (?:too|so) long\b")),
    ("service", re.compile(
        r"客服|态度|服务|回复|\bagents?\b|\bsupport\b|\brude\b|\bservice\b|\bstaff\b")),
    ("security", re.compile(r"指纹|面容|刷脸|安全|\bface id\b|\bfingerprint\b|\bsecurity\b|\b2fa\b")),
    ("features", re.compile(
        r"功能|支持|增加|添加|导出|提醒|通知|\bfeature\b|\badd\w*\b|\bexport\b|\bremind\w*|"
        r"\bnotifications?\b|\boption\b|\bwidget\b")),
)  # fmt: skip

THANKS = {
    "suggestion": {
        "zh": "谢谢您的建议！我们已经记录下来，会转给产品团队认真考虑。还有其他可以帮您的吗？",
        "en": "Thank you for the suggestion! We've noted it and passed it on to our product"
        " team. Is there anything else I can help with?",
    },
    "complaint": {
        "zh": "非常抱歉给您带来不好的体验。您的意见已经记录并转给相关团队，我们会认真改进。"
        "如果需要客服跟进处理，请点“转人工”。",
        "en": "I'm sorry about this experience. We've recorded your feedback and passed it on"
        " to the team responsible, so that we can do better. If you'd like a person to follow"
        " up, tap “Talk to a person”.",
    },
}


@dataclass(frozen=True, slots=True)
class Feedback:
    kind: Kind
    theme: str


# a question, not a remark: what a customer who picked the feedback topic may still ask
_QUESTION = re.compile(
    r"[?？]|吗|么|呢|怎么|如何|为什么|为啥|哪|几|多少|是否|能否|有没有|有无|是不是|可以.{0,8}吗|"
    r"\b(?:how|why|what|where|when|which|who|can i|could i|do i|is it|is my|are there)\b"
)
MIN_REMARK = 4  # characters: shorter is small talk, not feedback
CONTACT_SLUG = "contact-support"  # never the answer to a remark


def recognise(text: str, topic: str | None = None) -> Feedback | None:
    """The suggestion or complaint `text` makes, or None for anything else. In a chat the
    customer opened on the `feedback` topic, any remark that is not a question counts
    (as a suggestion, unless it reads as a complaint)."""
    norm = normalize(text)
    if not norm:
        return None
    question = _QUESTION.search(norm) is not None
    if (
        _COMPLAIN_ZH.search(norm)
        or _COMPLAIN_EN.search(norm)
        or (_COMPLAIN_WORD.search(norm) and not question)
    ):
        return Feedback("complaint", theme_of(text))
    if _SUGGEST_ZH.search(norm) or _SUGGEST_EN.search(norm):
        return Feedback("suggestion", theme_of(text))
    if topic == "feedback" and len(norm.strip()) >= MIN_REMARK and not question:
        return Feedback("suggestion", theme_of(text))
    return None


def theme_of(text: str) -> str:
    """What the feedback is about (`appearance`, `fees`, ... or `other`)."""
    norm = normalize(text)
    for theme, pattern in THEMES:
        if pattern.search(norm) or pattern.search(text):
            return theme
    return "other"


def thanks(kind: Kind, lang: str) -> str:
    texts = THANKS[kind]
    return texts["en" if lang == "en" else "zh"]
