"""Colloquial phrases users type, mapped to the words our articles use.

Applied to the normalised query before tokenizing: when a phrase occurs, its
canonical words are appended (the original text stays, so nothing is lost). Only
phrases that tokenizing alone would miss belong here: English multi-word idioms
whose words are stop words or mean something else on their own, and Chinese
phrasings that share no characters with the articles' words.
"""

from __future__ import annotations

COLLOQUIAL: dict[str, str] = {
    # arrival
    "where is my money": "not arrived transfer",
    "where's my money": "not arrived transfer",
    "hasn't arrived": "not arrived",
    "hasnt arrived": "not arrived",
    "not come through": "not arrived",
    "hasn't come": "not arrived",
    "never arrived": "not arrived",
    "didn't get the money": "not received money",
    "didnt get the money": "not received money",
    "taking forever": "delayed",
    "taking so long": "delayed",
    "on hold": "pending",
    "钱呢": "钱没到账",
    "钱去哪": "钱没到账",
    "没收到钱": "钱没到账",
    "还没收到": "没到账",
    "没到": "没到账",
    "多久能到": "到账时间",
    "几天到": "到账时间",
    "什么时候到": "到账时间",
    # failed payments
    "didn't go through": "payment failed",
    "didnt go through": "payment failed",
    "won't go through": "payment failed",
    "wont go through": "payment failed",
    "not going through": "payment failed",
    "keeps failing": "payment failed",
    "付不了": "支付失败",
    "付不出": "支付失败",
    "转不出": "转账失败",
    "转不了": "转账失败",
    "扣款不成功": "支付失败",
    # passwords
    "can't log in": "forgot password",
    "cant log in": "forgot password",
    "can't sign in": "forgot password",
    "locked out": "forgot password locked",
    "登不上": "忘记密码 登录",
    "登不进": "忘记密码 登录",
    "想不起": "忘记",
    # frozen
    "account locked": "account frozen",
    "account is locked": "account frozen",
    "被封": "冻结",
    "封号": "冻结",
    "用不了": "冻结 受限",
    # security
    "not me": "suspicious unknown device hacked",
    "wasn't me": "suspicious unknown device hacked",
    "someone else": "hacked suspicious",
    "不是我": "陌生设备 盗号",
    "不是本人": "陌生设备 盗号",
    # registering
    "sign up": "register",
    "open an account": "register",
    "new here": "register",
    # people
    "real person": "contact support human",
    "talk to someone": "contact support",
    "speak to someone": "contact support",
    "客服电话": "联系客服 电话",
    "your phone number": "contact support hotline",
    "your number": "contact support hotline",
    "call you": "contact support hotline",
    # refunds
    "money back": "refund",
    "wrong person": "refund wrong recipient",
    "转错": "转错人 退款",
    "打错": "转错人 退款",
    # sms
    "text message": "sms code",
    "no text": "sms code not received",
}


def expand(query: str) -> str:
    """`query` followed by the canonical words of every colloquial phrase it contains."""
    extra = [canon for phrase, canon in COLLOQUIAL.items() if phrase in query]
    return " ".join([query, *extra]) if extra else query
