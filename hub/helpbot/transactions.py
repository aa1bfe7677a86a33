"""Transactions as the bot sees them: ids found in text, and their status in words.

A transaction is the dict the I/O shell fetched from the payments API (or received
in a `transaction.status` event): `transaction_id`, `status`, `reason` (when failed),
`amount` (decimal string), `currency`, `speed`, `expected_by` (ISO 8601, while
processing), `created_at`, `from_account`/`to_account` (user ids), `from_name`/`to_name`
(account names), `direction` ("in" or "out", seen from the customer). Missing fields are
tolerated. People are shown by name, never by user id; a transfer the customer received is
told as received.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from hub.rules.clock import local_day_start, local_time, parse_time

Tx = Mapping[str, object]

# Ids are matched case-insensitively and without word boundaries on the Chinese side:
# "交易tx_3f9a1c2b7d4e没到" must yield the id although 易 and t are both word characters.
_TX_ID = re.compile(
    r"(?<![0-9a-z_])tx_[0-9a-z]{8,32}(?![0-9a-z])"
    r"|(?<![0-9a-f-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f-])",
    re.I,
)
MAX_IDS_PER_MESSAGE = 3

# Times are shown in the customer's zone, labelled (hub.rules.clock); Beijing time when
# the customer's zone is not known.

STATUS = {
    "processing": {"zh": "处理中", "en": "processing"},
    "succeeded": {"zh": "已成功", "en": "succeeded"},
    "failed": {"zh": "失败", "en": "failed"},
}
SPEED = {
    "instant": {"zh": "即时转账", "en": "instant transfer"},
    "standard": {"zh": "普通转账", "en": "standard transfer"},
}
# Sentence parts of describe_transaction(); the head is followed by one status tail.
TX_TEXT = {
    "head": {
        "zh": "交易 {tx_id}：{speed} {amount} 给 {payee}",
        "en": "Transaction {tx_id} ({speed}): {amount} to {payee}",
    },
    "head_in": {
        "zh": "交易 {tx_id}：{payer} 转给您的 {amount}（{speed}）",
        "en": "Transaction {tx_id}: {amount} from {payer} to you ({speed})",
    },
    "transfer": {"zh": "转账", "en": "transfer"},
    "payee": {"zh": "对方", "en": "the payee"},
    "payer": {"zh": "对方", "en": "the sender"},
    "received": {
        "zh": "，已到账，已计入您的余额。",
        "en": " has arrived and is in your balance.",
    },
    "processing_by": {
        "zh": "，处理中，预计 {when}前到账。",
        "en": " is processing and should arrive by {when}.",
    },
    "processing_late": {
        "zh": "，仍在处理中，已超过预计到账时间 {when}。可以回复「转人工」让客服帮您核查。",
        "en": ' is still processing although it was expected by {when}. Reply "talk to a person" and an agent will look into it.',
    },
    "processing_standard": {
        "zh": "，处理中。普通转账在工作日处理，非工作时间提交的顺延到下一个工作日。",
        "en": " is processing. Standard transfers are processed on business days; outside business hours they wait for the next one.",
    },
    "processing_instant": {
        "zh": "，处理中，通常几分钟内到账。",
        "en": " is processing; it usually arrives within minutes.",
    },
    "succeeded": {
        "zh": "，已成功。如果对方还没看到，请让对方查看银行卡入账记录。",
        "en": " has succeeded. If the payee doesn't see it yet, ask them to check their bank statement.",
    },
    "failed_because": {
        "zh": "，失败，原因：{reason}。失败的交易不会扣款。",
        "en": " failed: {reason}. A failed payment is not charged.",
    },
    "failed": {
        "zh": "，失败。失败的交易不会扣款。",
        "en": " failed. A failed payment is not charged.",
    },
    "other_status": {"zh": "，状态：{status}。", "en": ", status: {status}."},
}
REASONS = {
    "insufficient_balance": {
        "zh": "余额不足。充值或更换付款银行卡后可以重新付款",
        "en": "insufficient balance. Top up or choose another card, then pay again",
    },
    "invalid_payee": {
        "zh": "收款账户无效。请与收款人核对账号后重新付款",
        "en": "the payee account is invalid. Check the account with the payee and pay again",
    },
    "maintenance": {
        "zh": "系统维护中。维护结束后重新发起即可",
        "en": "scheduled maintenance. Please try again once it has finished",
    },
    "network_error": {
        "zh": "网络错误。请检查网络后重试，重试前先在账单里确认没有重复付款",
        "en": "a network error. Check your connection and retry, after making sure in Transactions that it was not paid twice",
    },
    "account_frozen": {
        "zh": "您的账户已被冻结。回复「转人工」，安全专员会协助您解冻",
        "en": 'your account is frozen. Reply "talk to a person" and a security specialist will help you unfreeze it',
    },
}


def find_transaction_ids(text: str) -> list[str]:
    """Transaction ids (`tx_...` or UUIDs) mentioned in `text`, first seen first, at most 3."""
    ids: list[str] = []
    for match in _TX_ID.finditer(text):
        tx_id = match.group()
        if tx_id.lower() not in (i.lower() for i in ids):
            ids.append(tx_id)
    return ids[:MAX_IDS_PER_MESSAGE]


def strip_transaction_ids(text: str) -> str:
    """`text` without transaction ids (so that an id does not look like English words)."""
    return _TX_ID.sub(" ", text)


def find_transaction(transactions: Iterable[Tx], tx_id: str) -> Tx | None:
    """The transaction with this id (case-insensitive), or None."""
    wanted = tx_id.lower()
    return next(
        (tx for tx in transactions if str(tx.get("transaction_id", "")).lower() == wanted), None
    )


def recent(transactions: Iterable[Tx], limit: int = 3) -> list[Tx]:
    """The most recent transactions, newest first (by `created_at`, ISO strings)."""
    return sorted(transactions, key=lambda tx: str(tx.get("created_at") or ""), reverse=True)[
        :limit
    ]


def is_pending(tx: Tx) -> bool:
    """Whether the transaction may still change status."""
    return tx.get("status") == "processing"


def is_incoming(tx: Tx) -> bool:
    """Whether the customer received this transfer (rather than sent it)."""
    return tx.get("direction") == "in"


def counterpart_name(tx: Tx, lang: str) -> str:
    """The other side's name as the customer knows it; never a user id."""
    name = tx.get("from_name") if is_incoming(tx) else tx.get("to_name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return _say("payer" if is_incoming(tx) else "payee", lang)


def describe_transaction(
    tx: Tx, lang: str, now: datetime | None = None, tz: str | None = None
) -> str:
    """The transaction's live status and expected arrival, in one or two sentences."""
    lang = "en" if lang == "en" else "zh"
    incoming = is_incoming(tx)
    head = _say(
        "head_in" if incoming else "head",
        lang,
        tx_id=tx.get("transaction_id", "?"),
        speed=_word(SPEED, tx.get("speed"), lang) or _say("transfer", lang),
        amount=format_amount(tx.get("amount"), tx.get("currency")),
        payee=counterpart_name(tx, lang),
        payer=counterpart_name(tx, lang),
    )
    status = tx.get("status")
    if status == "processing":
        return head + _processing_tail(tx, lang, now, tz)
    if status == "succeeded":
        return head + _say("received" if incoming else "succeeded", lang)
    if status == "failed":
        reason = _word(REASONS, tx.get("reason"), lang)
        if tx.get("reason") == "maintenance" and tx.get("maintenance_until"):
            reason = maintenance_reason(tx["maintenance_until"], lang, tz)
        return head + (
            _say("failed_because", lang, reason=reason) if reason else _say("failed", lang)
        )
    return head + _say("other_status", lang, status=status)


def maintenance_reason(until: object, lang: str, tz: str | None) -> str:
    """A refusal during a maintenance window, with the window's expected end in the
    customer's zone (hub.rules.clock)."""
    end = local_time(until, tz, lang)
    if lang == "zh":
        return f"系统维护中，预计 {end}恢复。恢复后重新发起即可"
    return f"scheduled maintenance, expected to end by {end}. Please try again then"


def summarize_transaction(tx: Tx, lang: str, tz: str | None = None) -> str:
    """One short line for a list of transactions to choose from."""
    amount = format_amount(tx.get("amount"), tx.get("currency"))
    status = _word(STATUS, tx.get("status"), lang) or str(tx.get("status", ""))
    when = format_time(tx.get("created_at"), lang, tz)
    name = counterpart_name(tx, lang)
    if is_incoming(tx):
        flow = f"{amount} from {name}" if lang == "en" else f"{name} 转给您 {amount}"
    else:
        flow = f"{amount} to {name}" if lang == "en" else f"{amount} → {name}"
    parts = [str(tx.get("transaction_id", "?")), flow, status]
    return " · ".join(p for p in [*parts, when] if p)


# --- finding the transaction a customer means ------------------------------------------

_AMOUNT = re.compile(
    r"(?:[¥￥]|rmb|cny)\s*(\d{1,9}(?:\.\d{1,2})?)"
    r"|(?<![\d.a-z_-])(\d{1,9}(?:\.\d{1,2})?)(?![\d.])\s*(块钱|块|元|rmb|cny|yuan|kuai)?"
    r"(?!\s*(?:天|小时|个|分钟|分|秒|点|号|月|年|次|笔|周|星期|days?|hours?|hrs?|min|mins|minutes?"
    r"|weeks?|times?|am|pm|st|nd|rd|th))",
    re.I,
)
_DAYS = [
    (re.compile(r"前天|day before yesterday"), 2),
    (re.compile(r"(?<!前)昨天|昨晚|昨日|yesterday|last night"), 1),
    (re.compile(r"今天|今早|今晚|刚才|刚刚|today|this morning|just now"), 0),
]
_WEEK = re.compile(r"上周|上星期|这周|本周|last week|this week")
_NAME_SPLIT = re.compile(r"[\s·・.,，]+")


@dataclass(frozen=True)
class TxQuery:
    """What a customer said about a transaction: amounts, a time window, words to match
    against the other side's name or id."""

    amounts: tuple[Decimal, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""

    @property
    def dated(self) -> bool:
        return self.since is not None

    def criteria(self, transactions: Iterable[Tx] = ()) -> int:
        """How many kinds of detail it has (amount, date, a known counterpart's name)."""
        named = any(names_in(tx, self.text) for tx in transactions)
        return bool(self.amounts) + self.dated + named


def parse_tx_query(text: str, now: datetime | None, tz: str | None = None) -> TxQuery:
    """Amounts ("88块", "¥200", "500元") and a day ("昨天", "yesterday") in `text`; days are
    the customer's days (their time zone, else Beijing's)."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    cleaned = _TX_ID.sub(" ", lowered)
    amounts = []
    for match in _AMOUNT.finditer(cleaned):
        raw = match.group(1) or match.group(2)
        try:
            value = Decimal(raw)
        except InvalidOperation:
            continue
        if value > 0 and value not in amounts:
            amounts.append(value)
    since = until = None
    if now is not None:
        today = local_day_start(now, tz)
        for pattern, days in _DAYS:
            if pattern.search(cleaned):
                since = today - timedelta(days=days)
                until = since + timedelta(days=1)
                break
        else:
            if _WEEK.search(cleaned):
                since, until = today - timedelta(days=7), today + timedelta(days=1)
    return TxQuery(tuple(amounts[:3]), since, until, cleaned)


def names_in(tx: Tx, text: str) -> bool:
    """Whether `text` names the other side of `tx`: a part of their account name ("王" of
    "Carol 王", "carol") or their user id."""
    lowered = text.lower()
    other_id = tx.get("from_account") if is_incoming(tx) else tx.get("to_account")
    if isinstance(other_id, str) and len(other_id) >= 3 and other_id.lower() in lowered:
        return True
    name = tx.get("from_name") if is_incoming(tx) else tx.get("to_name")
    if not isinstance(name, str):
        return False
    for part in _NAME_SPLIT.split(name.lower()):
        if not part:
            continue
        if any("\u4e00" <= c <= "\u9fff" for c in part):
            if part in lowered or (len(part) >= 2 and part[0] in lowered and len(part) <= 3):
                return True
        elif len(part) >= 2 and re.search(rf"(?<![a-z]){re.escape(part)}(?![a-z])", lowered):
            return True
    return False


def match_transactions(transactions: Iterable[Tx], query: TxQuery) -> list[Tx]:
    """The transactions that fit everything the customer said, newest first."""
    out = []
    for tx in transactions:
        if query.amounts:
            try:
                if Decimal(str(tx.get("amount"))) not in query.amounts:
                    continue
            except (InvalidOperation, ValueError):
                continue
        if query.since is not None:
            at = parse_time(tx.get("created_at"))
            if at is None or not (query.since <= at < (query.until or at + timedelta(1))):
                continue
        out.append(tx)
    named = [tx for tx in out if names_in(tx, query.text)]
    return recent(named or out, len(out))


def format_amount(amount: object, currency: object) -> str:
    """`¥1,234.50` for CNY, `1,234.50 USD` otherwise; the raw text when it is not a number."""
    try:
        value = f"{Decimal(str(amount)):,.2f}"
    except (InvalidOperation, ValueError):
        value = str(amount)
    currency = str(currency or "CNY").upper()
    return f"¥{value}" if currency == "CNY" else f"{value} {currency}"


def format_time(value: object, lang: str = "zh", tz: str | None = None) -> str:
    """An ISO 8601 time in the customer's zone, labelled (`2026-11-26 21:00（北京时间）`,
    `2026-11-26 08:00 (GMT-5)`): the one rule of hub.rules.clock; '' when unreadable."""
    return local_time(value, tz, lang)


def _processing_tail(tx: Tx, lang: str, now: datetime | None, tz: str | None) -> str:
    expected = parse_time(tx.get("expected_by")) if tx.get("expected_by") else None
    if expected is None:
        key = "processing_standard" if tx.get("speed") == "standard" else "processing_instant"
        return _say(key, lang)
    current = parse_time(now) if now is not None else None
    key = "processing_late" if current is not None and current > expected else "processing_by"
    return _say(key, lang, when=format_time(expected, lang, tz))


def _say(key: str, lang: str, **fields: object) -> str:
    return TX_TEXT[key][lang].format(**fields)


def _word(table: Mapping[str, Mapping[str, str]], key: object, lang: str) -> str:
    entry = table.get(str(key)) if key is not None else None
    return entry.get(lang, entry["zh"]) if entry else ""
