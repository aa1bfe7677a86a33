"""Colloquial phrases users type, mapped to the words our articles use.

Applied to the normalised query before tokenizing: when a phrase occurs, its
canonical words are appended (the original text stays, so nothing is lost). Only
phrases that tokenizing alone would miss belong here: English multi-word idioms
whose words are stop words or mean something else on their own, and Chinese
phrasings that share no characters with the articles' words.
"""

from __future__ import annotations

import re

from hub.helpbot.text import en_token

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
    # --- how customers talk (written from the labelled dev questions and support logs) ---
    # security: someone else in the account, money gone that the customer did not spend
    "被黑": "盗号 账号被盗",
    "黑了": "盗号 账号被盗",
    "被人动": "盗号 账号被盗",
    "登了我": "陌生设备登录 盗号",
    "登录了我": "陌生设备登录 盗号",
    "登我的": "陌生设备登录 盗号",
    "有人登": "陌生设备登录 盗号",
    "别人登": "陌生设备登录 盗号",
    "冒用": "盗号 账号被盗",
    "盗用": "盗号 账号被盗",
    "盗刷": "盗号 账号被盗",
    "没操作": "盗号 可疑",
    "不是我操作": "盗号 可疑",
    "不是我花": "盗号 可疑",
    "不是我付": "盗号 可疑",
    "不是我转": "盗号 可疑",
    "别的城市": "异地登录",
    "外地登录": "异地登录",
    "陌生人": "盗号 陌生设备登录",
    "手机被偷": "被盗 保护账户",
    "手机被盗": "被盗 保护账户",
    "被别人知道": "账户安全 保护账户",
    "泄露": "账户安全 保护账户",
    "compromised": "hacked account security",
    "didn't make": "suspicious hacked",
    "didnt make": "suspicious hacked",
    "unauthorized": "suspicious hacked",
    "strange login": "suspicious unknown device",
    "weird login": "suspicious unknown device",
    "unknown login": "suspicious unknown device",
    "phone was stolen": "stolen protect my account",
    "account safe": "account security",
    "account secure": "account security",
    # registering
    "没有账号": "注册 新用户",
    "没账号": "注册 新用户",
    "没有账户": "注册 新用户",
    "开个号": "注册 开户",
    "开个账户": "注册 开户",
    "register": "register new account",
    # failed payments
    "没成功": "付款不成功",
    "不成功": "付款不成功",
    "最后失败": "付款失败",
    "付不上": "付款失败",
    "对方账户异常": "收款方无效 转账失败",
    "收款人无效": "收款方无效 转账失败",
    "couldn't send": "payment failed",
    "couldnt send": "payment failed",
    "can't send": "payment failed",
    "cant send": "payment failed",
    "won't send": "payment failed",
    "wont send": "payment failed",
    "not working at the shop": "payment failed",
    # money not arrived
    "到哪一步": "交易状态 到账",
    "到哪了": "交易状态 到账",
    "到哪去了": "钱去哪了 到账",
    "没看到钱": "没到账",
    "我这没看到": "没到账",
    "still not there": "not arrived",
    "nothing came": "not arrived",
    "didn't get it": "not received",
    "didnt get it": "not received",
    "hasn't shown up": "not arrived",
    "hasnt shown up": "not arrived",
    "not shown up": "not arrived",
    "go through": "transaction status",
    "money coming": "when will it arrive",
    "still waiting": "delayed not arrived",
    # frozen
    "解封": "解冻 账号被封",
    "冻了": "冻结",
    # app
    "更新之后": "更新 App 用不了",
    "更新后": "更新 App 用不了",
    "安装不了": "App 打不开 重装",
    "装不上": "App 打不开 重装",
    "install the app": "app not working reinstall",
    "not responding": "app freezes bug",
    # feedback and complaints
    "提意见": "建议 反馈 投诉",
    "意见": "建议 反馈",
    "难用": "投诉 建议 反馈",
    "不好用": "投诉 建议 反馈",
    "太差": "投诉",
    "不满意": "投诉",
    "联系你们": "联系客服",
    "reach support": "contact support",
    "reach you": "contact support",
    "terrible": "complaint feedback",
    "feature request": "suggestion feedback",
    "not happy": "complaint",
    # refunds
    "退了": "退款",
    "paid too much": "refund wrong amount",
    "wrong account": "refund wrong recipient",
    # limits
    "大额": "限额 上限",
    "large amount": "limit maximum",
    # phone number
    "registered mobile": "change phone number",
}

# English words in a Chinese question ("我的transfer一直pending", "账号被hack了"), as the
# Chinese articles say them. Keys are index terms (see text.en_token).
EN_TO_ZH: dict[str, str] = {
    en_token(word) or word: zh
    for word, zh in {
        "account": "账户",
        "app": "App",
        "arrive": "到账",
        "balance": "余额",
        "code": "验证码",
        "complain": "投诉",
        "complaint": "投诉",
        "crash": "闪退",
        "decline": "交易被拒绝 付款失败",
        "error": "报错",
        "fail": "失败",
        "failed": "失败",
        "freeze": "冻结",
        "hacked": "盗号 被盗",
        "hotline": "客服电话",
        "limit": "限额",
        "lock": "账户被锁",
        "locked": "账户被锁",
        "log": "登录",
        "money": "钱",
        "password": "密码",
        "pay": "付款",
        "payment": "付款",
        "pending": "处理中",
        "refund": "退款",
        "register": "注册",
        "reset": "重置",
        "security": "安全",
        "text": "短信",
        "transfer": "转账",
        "update": "更新",
    }.items()
}
_LATIN = re.compile("[a-z][a-z']*")


def expand(query: str, lang: str | None = None) -> str:
    """`query` followed by the canonical words of every colloquial phrase it contains, and,
    for a Chinese index (`lang` "zh"), the Chinese of the English words mixed into it."""
    extra = [canon for phrase, canon in COLLOQUIAL.items() if phrase in query]
    if lang == "zh":
        for word in _LATIN.findall(query):
            term = en_token(word)
            if term and term in EN_TO_ZH:
                extra.append(EN_TO_ZH[term])
    return " ".join([query, *extra]) if extra else query
