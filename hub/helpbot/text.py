"""Text analysis for help search: language detection and tokenization.

Chinese is written without spaces, so Chinese runs become character bi-grams (which
carry most of the meaning: 到账, 冻结, 验证) plus the single characters that are not
grammar words. English is split into words, stop words are dropped and the rest get a
light suffix-stripping stem, so "arrived", "arrives" and "arrival" meet.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache
from typing import Any

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{CJK}]")
_WORD_RE = re.compile("[a-z]+")
_RUN_RE = re.compile(f"[{CJK}]+|[a-z0-9]+(?:'[a-z]+)?")

# Single characters that carry grammar, not meaning; bi-grams containing them are kept.
ZH_STOP_CHARS = frozenset(
    "的了吗呢吧啊呀哦嘛么我你您他她它们是在有和就都也很还又这那个一些把被给让请啥怎"
)
ZH_STOP_BIGRAMS = frozenset(
    "怎么 什么 为什 如何 请问 你们 我们 我的 一下 可以 这个 那个 是不 不是 应该 需要 "
    "现在 今天 已经 还是 是否 时候 的时 了吗 了怎 么办 怎样 能不 不能 有没 没有 帮我".split()
)

EN_STOPWORDS = frozenset(
    """a an the and or but if so of to in on at by for from with about as into than then
    i me my mine we our us you your yours he she it its they them their this that these those
    is am are was were be been being do does did doing done have has had having will would
    shall should can could may might must just also very too really please pls plz hi hello
    hey thanks thank what whats when where which who whom why how there here some any all
    again still yet now today yesterday get got getting go going want need know tell help
    one im ive id dont doesnt didnt isnt wasnt arent cant couldnt wont wouldnt hasnt havent
    ok okay up out like even much many more most""".split()
)

# Frequent misspellings, fixed before anything else reads the query.
TYPOS = {
    "pasword": "password",
    "passowrd": "password",
    "acount": "account",
    "accout": "account",
    "recieve": "receive",
    "recieved": "received",
    "recive": "receive",
    "reciever": "receiver",
    "transfered": "transferred",
    "tranfer": "transfer",
    "trasnfer": "transfer",
    "transfor": "transfer",
    "payement": "payment",
    "paymet": "payment",
    "verifcation": "verification",
    "verfication": "verification",
    "moeny": "money",
    "mony": "money",
    "refunt": "refund",
    "freezed": "frozen",
    "fozen": "frozen",
    "secuirty": "security",
    "securty": "security",
    "adress": "address",
    "emial": "email",
}

# Frequent Chinese misspellings (homophones typed by pinyin input, the traditional 帐),
# replaced before anything else reads the query.
ZH_TYPOS = {
    "帐": "账",
    "登陆": "登录",
    "密马": "密码",
    "密吗": "密码",
    "验证吗": "验证码",
    "验正码": "验证码",
    "冻洁": "冻结",
    "冻解": "冻结",
    "支负": "支付",
    "注测": "注册",
    "注删": "注册",
    "余额不组": "余额不足",
    "退宽": "退款",
    "到长": "到账",
    "手续废": "手续费",
    "闪推": "闪退",
}
_ZH_TYPO_RE = re.compile("|".join(sorted(map(re.escape, ZH_TYPOS), key=len, reverse=True)))

# Words folded onto the one our articles use, so "can't" and "cannot" agree.
EN_FOLD = {
    "cannot": "cant",
    "can't": "cant",
    "won't": "wont",
    "didn't": "didnt",
    "doesn't": "doesnt",
    "hasn't": "hasnt",
    "haven't": "havent",
    "isn't": "isnt",
    "i'm": "im",
    "login": "log",
    "logon": "log",
    "signin": "log",
    "signup": "register",
    "passwd": "password",
    "pwd": "password",
    "passcode": "password",
    "acct": "account",
    "sent": "send",
    "paid": "pay",
    "otp": "code",
    "sms": "text",
    "fone": "phone",
    "frozen": "freeze",
    "froze": "freeze",
    "failure": "fail",
    "e-mail": "email",
    "hrs": "hours",
    "registration": "register",
    "registered": "register",
    "registering": "register",
    "unauthorised": "unauthorized",
    "hacker": "hacked",
    "hack": "hacked",
    "hacking": "hacked",
    "recieving": "receiving",
    "declined": "decline",
}

# Longest first so that "ication" wins over "ation" and "sses" over "s".
_SUFFIXES = (
    "ications", "ication", "ations", "ation", "ings", "ing", "ies", "ied", "sses",
    "ment", "ness", "edly", "ed", "ly", "al", "es", "s",
)  # fmt: skip
_SUFFIX_MIN_STEM = 3


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower case, curly quotes and common typos fixed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _ZH_TYPO_RE.sub(lambda m: ZH_TYPOS[m.group()], text)
    return _WORD_RE.sub(lambda m: TYPOS.get(m.group(), m.group()), text)


def is_unigram(term: str) -> bool:
    """Whether an index term is a single Chinese character (weak evidence on its own)."""
    return len(term) == 1 and bool(_CJK_RE.match(term))


def has_cjk(text: str) -> bool:
    """Whether `text` contains a Chinese character."""
    return bool(_CJK_RE.search(text))


def detect_lang(text: str, default: str = "zh") -> str:
    """'zh' if the text has Chinese characters, 'en' if it has Latin letters only, else default."""
    if has_cjk(text):
        return "zh"
    if re.search("[a-zA-Z]{2,}", text):
        return "en"
    return default


def _strip_suffix(word: str) -> str:
    for suffix in _SUFFIXES:
        if not word.endswith(suffix) or len(word) - len(suffix) < _SUFFIX_MIN_STEM:
            continue
        if suffix == "s" and word.endswith(("ss", "us", "is")):
            return word
        if suffix == "sses":
            return word[:-2]
        if suffix in ("ies", "ied", "ication", "ications"):
            return word[: -len(suffix)] + "y"
        return word[: -len(suffix)]
    return word


def stem(word: str) -> str:
    """A light English stemmer: strips up to two suffixes, then folds a final 'e' or 'y'."""
    word = _strip_suffix(_strip_suffix(word))
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("y"):
        word = word[:-1] + "i"
    # A consonant doubled before -ed/-ing ("transferred") is folded to one.
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]
    return word


# How Chinese runs are cut into terms: "bigram" (every two adjacent characters), "jieba"
# (dictionary words, jieba's search mode) or "both". Chosen by measurement on the dev part of
# the labelled questions (docs/benchmarks.md); bench/help_eval.py --segmenter compares them.
SEGMENTERS = ("bigram", "jieba", "both")
_segmenter = "bigram"


def set_segmenter(name: str) -> None:
    """Switch the Chinese segmenter (indexes built before keep their terms: rebuild them)."""
    global _segmenter
    if name not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {name!r}")
    _segmenter = name


def segmenter() -> str:
    """The Chinese segmenter in use."""
    return _segmenter


@lru_cache(maxsize=1)
def _jieba() -> Any:  # jieba ships no types
    import jieba  # the dictionary ships in the wheel; loaded once, on first use

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def _bigrams(run: str) -> list[str]:
    return [b for b in (run[i : i + 2] for i in range(len(run) - 1)) if b not in ZH_STOP_BIGRAMS]


def _words(run: str) -> list[str]:
    return [
        w
        for w in _jieba().cut_for_search(run, HMM=False)
        if len(w) > 1 and w not in ZH_STOP_BIGRAMS
    ]


def zh_tokens(run: str) -> list[str]:
    """Meaningful uni-grams of one run of Chinese characters, and its bi-grams or words."""
    tokens = [c for c in run if c not in ZH_STOP_CHARS]
    if _segmenter in ("bigram", "both"):
        tokens += _bigrams(run)
    if _segmenter in ("jieba", "both"):
        tokens += _words(run)
    return tokens


def en_token(word: str) -> str | None:
    """The index term of one English word, or None for a stop word."""
    word = EN_FOLD.get(word, word)
    word = word.replace("'", "")
    if word in EN_STOPWORDS or (len(word) < 2 and not word.isdigit()):
        return None
    return stem(word)


def tokenize(text: str) -> list[str]:
    """Index terms of `text`, whatever its language (both may be mixed)."""
    tokens: list[str] = []
    for run in _RUN_RE.findall(normalize(text)):
        if _CJK_RE.match(run):
            tokens += zh_tokens(run)
        else:
            term = en_token(run)
            if term:
                tokens.append(term)
    return tokens
