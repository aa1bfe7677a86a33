"""The help bot's conversation logic: text in, replies and decisions out.

Pure: no I/O and no awaits. The shell (the chat use case) stores `BotState` as JSON
with the conversation, fetches the user's recent transactions into `BotContext`,
sends `BotTurn.replies` as `bot` messages, escalates to the human queue when told,
and watches the listed transactions, calling `on_transaction_update` when one changes.

One turn, in order of precedence:
1. phishing or a code given away -> the anti-fraud guidance (with the account's alerts and
                                    state) and an offer of the security team (asked for a
                                    person too: straight to it)
2. asks for a person, or "yes"
   to an offered hand-over       -> escalate (to the offered topic, if any), with a summary
                                    for the agent; "no" to the offer -> "anything else?"
3. mentions transaction ids     -> their live status (watched while processing)
4. picks from offered list      -> that transaction's status
5. picks a suggested article    -> that article
6. answers "did it help?"       -> yes: close politely; no: a miss and a different article
                                   (2nd miss escalates)
7. greeting / thanks            -> short reply
8. "where is my money?", or an amount/day/name of a transfer
                                -> the matching transactions (whole history), by name
8b. a suggestion or complaint   -> thanks, recorded for the product team
                                   (hub.helpbot.feedback); no search, no hand-off
9. anything else                -> search: confident -> article (never the same one twice)
                                   + the customer's own data for it + "did it help?";
                                   unsure -> the closest articles to pick; nothing -> a miss.
                                   About the account's safety (hacked, not me...) but no
                                   confident security article: the anti-fraud guidance,
                                   never another topic's article.

Bot messages may carry quick replies (`BotTurn.choices`, on the last reply): buttons that
send their text as the user's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from hub.helpbot import feedback as product_feedback
from hub.helpbot.article import LANGS, TOPICS
from hub.helpbot.catalog import HelpCenter, load_help_center
from hub.helpbot.intents import (
    accepts_offer,
    asks_about_fraud,
    asks_where_money,
    choice_number,
    is_greeting,
    is_no,
    is_thanks,
    is_yes,
    mentions_security,
    wants_human,
)
from hub.helpbot.messages import (
    CODE_CHECKLIST,
    TOPIC_EXAMPLES,
    TOPIC_NAMES,
    article_link,
    choices,
    say,
)
from hub.helpbot.search import Hit
from hub.helpbot.text import detect_lang
from hub.helpbot.transactions import (
    REASONS,
    Tx,
    TxQuery,
    counterpart_name,
    describe_transaction,
    find_transaction,
    find_transaction_ids,
    format_amount,
    format_time,
    is_incoming,
    is_pending,
    maintenance_reason,
    match_transactions,
    parse_tx_query,
    recent,
    strip_transaction_ids,
    summarize_transaction,
)
from hub.rules.maintenance import window_text

MAX_MISSES = 2
MAX_WATCHED = 10  # a chat never needs more; keeps the stored state small
MAX_OFFERED = 3
SUGGESTIONS = 3
MAX_ANSWERED = 12
MAX_QUERY_KEPT = 200
ALTERNATIVE_SHARE = 0.3  # a different article is offered when it scores this share of the best
ALERTS_SHOWN = 3
ASKED_KEPT, ASKED_CHARS = 3, 100
FRAUD_SLUG = "anti-fraud"
SECURITY_TOPIC = "security"


@dataclass(frozen=True)
class BotState:
    """Per-conversation memory of the bot; `to_dict()` is JSON-serializable."""

    lang: str | None = None
    misses: int = 0
    last_slug: str | None = None
    awaiting_feedback: bool = False
    offered: tuple[str, ...] = ()
    watched: tuple[str, ...] = ()
    escalated: bool = False
    resolved: bool = False
    answered: tuple[str, ...] = ()  # articles already sent, oldest first
    suggested: tuple[str, ...] = ()  # articles offered to pick from
    last_query: str | None = None  # the last question searched (for "no")
    asked: tuple[str, ...] = ()  # the customer's last few messages, for the agent's summary
    handover_topic: str | None = None  # offered in the last reply: "yes" escalates to it

    @property
    def reply_lang(self) -> str:
        """The language the bot answers in."""
        return self.lang or "zh"

    def to_dict(self) -> dict[str, object]:
        """A plain dict for storage (lists, strings, ints, bools, None)."""
        data = asdict(self)
        data["offered"], data["watched"] = list(self.offered), list(self.watched)
        data["answered"], data["suggested"] = list(self.answered), list(self.suggested)
        data["asked"] = list(self.asked)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> BotState:
        """Rebuild a state from `to_dict()` output; unknown or malformed fields are dropped."""
        data = data or {}
        lang = data.get("lang")
        last_slug = data.get("last_slug")
        last_query = data.get("last_query")
        handover = data.get("handover_topic")
        return cls(
            lang=lang if lang in LANGS else None,
            misses=_count(data.get("misses")),
            last_slug=last_slug if isinstance(last_slug, str) else None,
            awaiting_feedback=bool(data.get("awaiting_feedback")),
            offered=_str_tuple(data.get("offered"))[:MAX_OFFERED],
            watched=_str_tuple(data.get("watched"))[:MAX_WATCHED],
            escalated=bool(data.get("escalated")),
            resolved=bool(data.get("resolved")),
            answered=_str_tuple(data.get("answered"))[-MAX_ANSWERED:],
            suggested=_str_tuple(data.get("suggested"))[:SUGGESTIONS],
            last_query=last_query[:MAX_QUERY_KEPT] if isinstance(last_query, str) else None,
            asked=tuple(a[:ASKED_CHARS] for a in _str_tuple(data.get("asked")))[-ASKED_KEPT:],
            handover_topic=handover if handover in TOPICS else None,
        )


@dataclass(frozen=True)
class BotContext:
    """What the shell knows about the chat when the user writes."""

    lang: str = "zh"
    topic: str = "other"
    transactions: Sequence[Tx] = ()
    now: datetime | None = None  # enables "late" wording for overdue transfers, and "昨天"
    help_center: HelpCenter | None = None  # default: the packaged help center
    # The customer's account (payments API view: name, balance, frozen...), None if unknown.
    account: Mapping[str, object] | None = None
    alerts: Sequence[Mapping[str, object]] = ()  # recent security alerts, newest first
    # Transactions found in the whole history for what the message says (amount, day,
    # counterpart), when the shell searched; None when it did not.
    found: Sequence[Tx] | None = None
    # The customer's IANA time zone (from their device), None: the hub's default. Every time
    # the bot says is in it, labelled (hub.rules.clock).
    tz: str | None = None
    # The maintenance window on now (hub.rules.maintenance), None when there is none.
    maintenance: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BotTurn:
    """What the bot decided for one user message or event."""

    replies: list[str]
    new_state: BotState
    escalate: bool = False
    escalate_topic: str | None = None
    watch_transactions: list[str] = field(default_factory=list)
    article: str | None = None  # slug of the article answered with, for metrics
    choices: list[dict[str, str]] = field(default_factory=list)  # quick replies, last reply
    summary: str | None = None  # for the agent, when escalating
    feedback: product_feedback.Feedback | None = None  # a suggestion or complaint to record


def tx_query(text: str, now: datetime | None, tz: str | None = None) -> TxQuery:
    """What the shell searches the history for (amounts and a day in the message)."""
    return parse_tx_query(strip_transaction_ids(text), now, tz)


def greeting(lang: str = "zh", topic: str = "other") -> str:
    """The bot's first message in a new chat on `topic`."""
    lang = lang if lang in LANGS else "zh"
    topic = topic if topic in TOPIC_NAMES else "other"
    return say(
        "greeting", lang, topic=TOPIC_NAMES[topic][lang], examples=TOPIC_EXAMPLES[topic][lang]
    )


def greeting_choices(lang: str = "zh") -> list[dict[str, str]]:
    """The topic chips under the greeting."""
    return choices("topics", lang if lang in LANGS else "zh")


def respond(state: BotState, text: str, ctx: BotContext) -> BotTurn:
    """The bot's answer to one user message."""
    if state.escalated:
        return BotTurn([], state)  # a person has the chat now; the bot stays quiet
    lang = _reply_lang(state, text, ctx)
    offered = state.handover_topic  # an offer stands for one reply only
    state = replace(state, lang=lang, resolved=False, handover_topic=None)
    if not text.strip():
        return BotTurn([say("not_understood", lang)], state)
    words = strip_transaction_ids(text).strip()
    if words and not (is_yes(words) or is_no(words) or wants_human(words)):
        state = replace(
            state, asked=(*state.asked, " ".join(text.split())[:ASKED_CHARS])[-ASKED_KEPT:]
        )
    if asks_about_fraud(text):
        return _security_guidance(state, ctx, connect=wants_human(text))
    if wants_human(text) or (offered and accepts_offer(text)):
        turn = _escalate(state, ctx, "escalate_asked")
        turn = replace(turn, feedback=product_feedback.recognise(text))
        topic = offered or (SECURITY_TOPIC if mentions_security(text) else None)
        return replace(turn, escalate_topic=topic) if topic else turn
    if offered and is_no(text):
        return BotTurn([say("anything_else", lang)], state)
    steps = (
        _by_transaction_id,
        _by_choice,
        _by_suggestion,
        _by_feedback,
        _by_small_talk,
        _by_where_money,
        _by_product_feedback,
    )
    for step in steps:
        answer = step(state, text, ctx)
        if answer is not None:
            return answer
    return _by_search(state, text, ctx)


def on_transaction_update(
    state: BotState, tx: Tx, now: datetime | None = None, tz: str | None = None
) -> BotTurn:
    """A follow-up message when a watched transaction changes status, else nothing."""
    tx_id = str(tx.get("transaction_id", ""))
    # Still sent after escalation: the user and the agent both want to see the change.
    if tx_id not in state.watched:
        return BotTurn([], state)
    lang = state.reply_lang
    text = say("tx_update", lang, text=describe_transaction(tx, lang, now, tz))
    watched = state.watched if is_pending(tx) else tuple(i for i in state.watched if i != tx_id)
    return BotTurn([text], replace(state, watched=watched))


def handover_topic(stored: Mapping[str, object] | None) -> str | None:
    """The queue the bot's last reply offered to hand the chat to, if any: where the
    user's own escalation (the widget's button) should go."""
    return BotState.from_dict(stored).handover_topic


def escalation_topic(slug: str | None, chat_topic: str | None, help_center: HelpCenter) -> str:
    """The queue topic: the matched article's topic, else the chat's, else 'other'."""
    article = help_center.get(slug) if slug else None
    if article and article.topic != "other":
        return article.topic
    return chat_topic if chat_topic in TOPICS else "other"


# --- steps: each returns a turn, or None to let the next step try -------------------------


def _by_transaction_id(state: BotState, text: str, ctx: BotContext) -> BotTurn | None:
    ids = find_transaction_ids(text)
    if not ids:
        return None
    lang = state.reply_lang
    replies, txs = [], []
    for tx_id in ids:
        tx = find_transaction(ctx.transactions, tx_id)
        if tx is None:
            replies.append(say("tx_not_found", lang, tx_id=tx_id))
        else:
            txs.append(tx)
    return _tell_transactions(replace(state, offered=()), txs, ctx, replies)


def _by_choice(state: BotState, text: str, ctx: BotContext) -> BotTurn | None:
    if not state.offered:
        return None
    index = choice_number(text, len(state.offered))
    if index is None:
        return None
    tx = find_transaction(ctx.transactions, state.offered[index])
    return _tell_transactions(replace(state, offered=()), [tx] if tx else [], ctx, [])


def _by_feedback(state: BotState, text: str, ctx: BotContext) -> BotTurn | None:
    if not state.awaiting_feedback:
        return None
    lang = state.reply_lang
    state = replace(state, awaiting_feedback=False)
    if is_yes(text):
        return BotTurn([say("glad", lang)], replace(state, resolved=True, misses=0))
    if is_no(text):
        turn = _miss(state, ctx, "sorry_retry")
        if turn.escalate:
            return turn
        other = _alternative(state, ctx)
        if other is None:
            return replace(turn, choices=choices("topics", lang) + choices("human", lang))
        answer = _answer(turn.new_state, other, ctx)
        return replace(answer, replies=[say("other_article", lang), *answer.replies])
    return None  # a new question: answer it as such


def _by_product_feedback(state: BotState, text: str, ctx: BotContext) -> BotTurn | None:
    """A suggestion or a complaint: thanked for and recorded (hub.helpbot.feedback), not
    searched for; a person only if the customer asks."""
    if mentions_security(text):
        return None  # the account's safety first: the search's security answer, or a person
    found = product_feedback.recognise(text)
    if found is None and ctx.topic == "feedback":
        # the customer chose the feedback topic: a remark is feedback, unless the help
        # center has a confident answer to it (a problem described without a question)
        remark = product_feedback.recognise(text, ctx.topic)
        if remark is not None:
            help_center = ctx.help_center or load_help_center()
            query = strip_transaction_ids(text)
            # "how to contact us" answers no remark: it is what feedback used to get
            excluded = (FRAUD_SLUG, product_feedback.CONTACT_SLUG)
            _, confident = help_center.best(query, state.reply_lang, excluded)
            found = None if confident else remark
    if found is None:
        return None
    lang = state.reply_lang
    return BotTurn(
        [product_feedback.thanks(found.kind, lang)],
        replace(state, awaiting_feedback=False, misses=0),
        choices=choices("human", lang) if found.kind == "complaint" else [],
        feedback=found,
    )


def _by_small_talk(state: BotState, text: str, ctx: BotContext) -> BotTurn | None:
    lang = state.reply_lang
    if is_greeting(text):
        return BotTurn([say("greeting_reply", lang)], state)
    if is_thanks(text):
        return BotTurn([say("thanks_reply", lang)], replace(state, resolved=True))
    return None


def _by_where_money(state: BotState, text: str, ctx: BotContext) -> BotTurn | None:
    pool = list(ctx.found or []) + [
        tx for tx in ctx.transactions if tx not in list(ctx.found or [])
    ]
    if not pool:
        return None
    query = tx_query(text, ctx.now, ctx.tz)
    detailed = query.criteria(pool)
    if not (asks_where_money(text) or detailed >= 2):
        return None
    lang = state.reply_lang
    state = replace(state, last_slug="arrival-delay", last_query=text[:MAX_QUERY_KEPT])
    intro: list[str] = []
    if detailed:
        matches = match_transactions(pool, query)
        if len(matches) == 1 or (matches and len(matches) <= MAX_OFFERED and query.amounts):
            if len(matches) == 1:
                return _tell_transactions(state, matches, ctx, [])
            return _offer(state, matches, lang, [], ctx.tz)
        if not matches:
            intro = [say("tx_found_none", lang, what=_what(query, lang))]
        else:
            return _offer(state, matches[:MAX_OFFERED], lang, [], ctx.tz)
    latest = recent(ctx.transactions or pool, MAX_OFFERED)
    if len(latest) == 1 and not intro:
        return _tell_transactions(state, latest, ctx, [])
    return _offer(state, latest, lang, intro, ctx.tz)


def _offer(
    state: BotState, txs: list[Tx], lang: str, intro: list[str], tz: str | None = None
) -> BotTurn:
    lines = [f"{n}. {summarize_transaction(tx, lang, tz)}" for n, tx in enumerate(txs, 1)]
    offered = tuple(str(tx.get("transaction_id")) for tx in txs)
    head = intro or [say("offer_transactions", lang)]
    reply = "\n".join([*head, *lines])
    picks = [{"label": str(n), "text": str(n)} for n in range(1, len(txs) + 1)]
    return BotTurn([reply], replace(state, offered=offered), article="arrival-delay", choices=picks)


def _what(query: TxQuery, lang: str) -> str:
    parts = [format_amount(a, "CNY") for a in query.amounts]
    if query.since is not None:
        parts.append(query.since.strftime("%Y-%m-%d"))
    return "、".join(parts) if lang != "en" else ", ".join(parts)


def _by_suggestion(state: BotState, text: str, ctx: BotContext) -> BotTurn | None:
    if not state.suggested:
        return None
    help_center = ctx.help_center or load_help_center()
    wanted = text.strip().lower()
    for slug in state.suggested:
        for lang in (state.reply_lang, *LANGS):
            article = help_center.get(slug, lang)
            if article and article.title.lower() == wanted:
                hit = Hit(slug, article.title, 0.0)
                return _answer(replace(state, suggested=(), misses=0), hit, ctx)
    return None


def _by_search(state: BotState, text: str, ctx: BotContext) -> BotTurn:
    lang = state.reply_lang
    help_center = ctx.help_center or load_help_center()
    query = strip_transaction_ids(text)
    security = mentions_security(text)
    # The anti-fraud article is for questions about fraud, which step 1 answers: a search
    # that ranks it first for "the app asks for a code" judges the other articles alone.
    exclude = () if security else (FRAUD_SLUG,)
    state = replace(state, last_query=query.strip()[:MAX_QUERY_KEPT] or state.last_query)
    hit, confident = help_center.best(query, lang, exclude)
    if security and not (confident and _topic_of(hit, help_center) == SECURITY_TOPIC):
        return _security_guidance(state, ctx)  # never another topic's article, never a guess
    if hit is None:
        turn = _miss(state, ctx, "not_understood")
        return turn if turn.escalate else replace(turn, choices=choices("topics", lang))
    if not confident:
        hits = [
            h
            for h in help_center.search(query, lang, limit=SUGGESTIONS + len(exclude))
            if h.slug not in exclude
        ][:SUGGESTIONS]
        turn = _miss(state, ctx, "pick_article")
        if turn.escalate:
            return turn
        lines = [
            say("suggestion", lang, title=h.title, link=article_link(h.slug, lang)) for h in hits
        ]
        picks = [{"label": h.title, "text": h.title} for h in hits]
        new_state = replace(turn.new_state, suggested=tuple(h.slug for h in hits))
        return BotTurn(
            ["\n".join([turn.replies[0], *lines])],
            new_state,
            choices=picks + choices("human", lang),
        )
    if hit.slug in state.answered:
        other = _alternative(state, ctx, query)
        if other is None and security and FRAUD_SLUG not in state.answered:
            return _security_guidance(state, ctx)
        if other is None:
            article = help_center.get(hit.slug, lang)
            title = article.title if article else hit.title
            return BotTurn(
                [say("repeat", lang, title=title)],
                replace(state, last_slug=hit.slug, awaiting_feedback=False),
                choices=choices("repeat", lang),
            )
        answer = _answer(state, other, ctx)
        return replace(answer, replies=[say("other_article", lang), *answer.replies])
    return _answer(state, hit, ctx)


def _alternative(state: BotState, ctx: BotContext, query: str | None = None) -> Hit | None:
    """The best article for the question not sent yet, if it is a plausible answer."""
    query = query or state.last_query
    if not query:
        return None
    help_center = ctx.help_center or load_help_center()
    hits = help_center.search(query, state.reply_lang, limit=SUGGESTIONS + 1)
    if not hits:
        return None
    top = hits[0].score
    # As in the search step: about the account's safety, only a security article will do;
    # otherwise the anti-fraud article is not an answer (step 1 gives it to fraud questions).
    security = mentions_security(query)
    return next(
        (
            h
            for h in hits
            if h.slug not in state.answered
            and h.slug != state.last_slug
            and h.score >= ALTERNATIVE_SHARE * top
            and (_topic_of(h, help_center) == SECURITY_TOPIC if security else h.slug != FRAUD_SLUG)
        ),
        None,
    )


def _answer(state: BotState, hit: Hit, ctx: BotContext) -> BotTurn:
    """The article, what the customer's own data says about it, and "did it help?"."""
    lang = state.reply_lang
    help_center = ctx.help_center or load_help_center()
    article = help_center.get(hit.slug, lang) or help_center.get(hit.slug)
    assert article is not None  # the index holds only articles of the help center
    answer = say(
        "answer",
        lang,
        title=article.title,
        summary=article.summary,
        link=article_link(hit.slug, lang),
    )
    personal = _personal(hit.slug, lang, ctx)
    answered = tuple(s for s in state.answered if s != hit.slug) + (hit.slug,)
    new_state = replace(
        state,
        last_slug=hit.slug,
        awaiting_feedback=True,
        offered=(),
        suggested=(),
        answered=answered[-MAX_ANSWERED:],
    )
    replies = [answer, *personal, say("ask_feedback", lang)]
    return BotTurn(replies, new_state, article=hit.slug, choices=choices("feedback", lang))


# --- the customer's own data ------------------------------------------------------------


def _personal(slug: str, lang: str, ctx: BotContext) -> list[str]:
    """What the customer's account, payments and alerts say about the article's problem."""
    if slug == "payment-failed":
        return _failed_payment(lang, ctx)
    if slug in ("register-account", "reset-password", "sms-code"):
        lines = _account_state(lang, ctx, registering=slug == "register-account")
        lines.append(CODE_CHECKLIST[lang])  # registering and resetting both take a code
        return lines
    if slug in ("account-security", "account-frozen"):
        return _security(lang, ctx)
    return []


def _failed_payment(lang: str, ctx: BotContext) -> list[str]:
    """During a maintenance window the window comes first (what is paused, the expected end
    in the customer's zone), then what their own payments say."""
    lines = _recent_failure(lang, ctx)
    if ctx.maintenance is not None:
        lines = [window_text(ctx.maintenance, lang, ctx.tz)[1], *lines]
    return lines


def _recent_failure(lang: str, ctx: BotContext) -> list[str]:
    failed = [
        tx
        for tx in recent(ctx.transactions, len(ctx.transactions))
        if tx.get("status") == "failed" and not is_incoming(tx)
    ]
    if not failed:
        return [say("no_failed_payment", lang)] if ctx.account else []
    tx = failed[0]
    reason_key = str(tx.get("reason") or "")
    entry = REASONS.get(reason_key)
    reason = entry[lang] if entry else (reason_key or "-")
    if reason_key == "maintenance" and tx.get("maintenance_until"):  # the window's end, said
        reason = maintenance_reason(tx["maintenance_until"], lang, ctx.tz)
    text = say(
        "failed_personal",
        lang,
        when=format_time(tx.get("created_at"), lang, ctx.tz),
        amount=format_amount(tx.get("amount"), tx.get("currency")),
        name=counterpart_name(tx, lang),
        reason=reason,
    )
    balance = (ctx.account or {}).get("balance")
    if reason_key == "insufficient_balance" and balance is not None:
        try:
            short = Decimal(str(tx.get("amount"))) - Decimal(str(balance))
        except (InvalidOperation, ValueError):
            short = Decimal(0)
        if short > 0:
            text += say(
                "balance_short",
                lang,
                balance=format_amount(balance, tx.get("currency")),
                short=format_amount(short, tx.get("currency")),
            )
    return [text]


def _account_state(lang: str, ctx: BotContext, registering: bool) -> list[str]:
    account = ctx.account
    if account is None:
        return []
    if not account:  # the payments service has no account for this user
        return [say("account_none", lang)] if registering else []
    name = str(account.get("name") or "")
    if account.get("frozen"):
        return [_frozen_line(account, lang, ctx.tz)]
    return [say("account_ok", lang, name=name)]


def _frozen_line(account: Mapping[str, object], lang: str, tz: str | None = None) -> str:
    since = format_time(account.get("frozen_at"), lang, tz)
    since_text = (f"（{since} 起）" if lang != "en" else f" since {since}") if since else ""
    reason = str(account.get("frozen_reason") or ("-" if lang == "en" else "未说明"))
    return say(
        "account_frozen", lang, name=str(account.get("name") or ""), since=since_text, reason=reason
    )


ALERT_NAMES = {
    "new_device_login": {"zh": "新设备登录", "en": "new device login"},
    "suspicious_activity": {"zh": "可疑交易", "en": "suspicious activity"},
    "account_frozen": {"zh": "账户被冻结", "en": "account frozen"},
    "account_unfrozen": {"zh": "账户已解冻", "en": "account unfrozen"},
}


def _security(lang: str, ctx: BotContext, reassure: bool = True) -> list[str]:
    """The account's frozen state and recent alerts; with `reassure`, "no alerts" when there
    are none (not after a scam warning: it would read as "all is well")."""
    lines = []
    account = ctx.account
    if account and account.get("frozen"):
        lines.append(_frozen_line(account, lang, ctx.tz))
    elif account and reassure:  # the freeze state, said either way
        lines.append(say("not_frozen", lang, name=str(account.get("name") or "")))
    if ctx.alerts:
        items = []
        for alert in list(ctx.alerts)[:ALERTS_SHOWN]:
            kind = str(alert.get("alert") or "")
            name = ALERT_NAMES.get(kind, {}).get(lang, kind)
            details = alert.get("details")
            device = details.get("device_name") if isinstance(details, Mapping) else None
            when = format_time(alert.get("occurred_at"), lang, ctx.tz)
            items.append(f"· {when} {name}" + (f"（{device}）" if device and lang != "en" else ""))
            if device and lang == "en":
                items[-1] += f" ({device})"
        lines.append(say("alerts", lang, lines="\n".join(items)))
    elif account is not None and reassure:
        lines.append(say("no_alerts", lang))
    return lines


# --- shared outcomes ------------------------------------------------------------------------


def _tell_transactions(
    state: BotState, txs: list[Tx], ctx: BotContext, replies: list[str]
) -> BotTurn:
    lang = state.reply_lang
    replies = replies + [describe_transaction(tx, lang, ctx.now, ctx.tz) for tx in txs]
    pending = [str(tx["transaction_id"]) for tx in txs if is_pending(tx)]
    new = [i for i in pending if i not in state.watched]
    watched = (state.watched + tuple(new))[-MAX_WATCHED:]
    if new:
        replies.append(say("tx_watching", lang))
    else:
        replies.append(say("anything_else", lang))
    state = replace(state, watched=watched, awaiting_feedback=False)
    # a transfer told is often still a worry: one tap reaches a person
    return BotTurn(replies, state, watch_transactions=new, choices=choices("human", lang))


def _miss(state: BotState, ctx: BotContext, message: str) -> BotTurn:
    state = replace(state, misses=state.misses + 1, awaiting_feedback=False)
    if state.misses >= MAX_MISSES:
        return _escalate(state, ctx, "escalate_missed")
    return BotTurn([say(message, state.reply_lang)], state)


def _security_guidance(state: BotState, ctx: BotContext, *, connect: bool = False) -> BotTurn:
    """What to do about a scam now, what the account's alerts and state say, and a one-tap
    way to the security team: "yes" (or the widget's escalate button) hands the chat to the
    `security` queue. `connect`: the user asked for a person as well, so hand it over at
    once. The guidance is sent once per chat: later, a pointer to it stands in for it."""
    lang = state.reply_lang
    again = FRAUD_SLUG in state.answered
    answered = tuple(s for s in state.answered if s != FRAUD_SLUG) + (FRAUD_SLUG,)
    state = replace(
        state,
        last_slug=FRAUD_SLUG,
        awaiting_feedback=False,
        offered=(),
        suggested=(),
        misses=0,
        answered=answered[-MAX_ANSWERED:],
    )
    if again:
        guidance = [say("fraud_again", lang)]
    else:
        link = article_link(FRAUD_SLUG, lang)
        guidance = [say("fraud_guidance", lang, link=link), *_security(lang, ctx, reassure=False)]
    if connect:
        turn = _escalate(state, ctx, "fraud_connecting")
        return replace(
            turn,
            replies=[*guidance, *turn.replies],
            escalate_topic=SECURITY_TOPIC,
            article=FRAUD_SLUG,
        )
    offer = replace(state, handover_topic=SECURITY_TOPIC)
    return BotTurn(
        [*guidance, say("fraud_offer", lang)],
        offer,
        article=FRAUD_SLUG,
        choices=choices("security_offer", lang),
    )


def _topic_of(hit: Hit | None, help_center: HelpCenter) -> str | None:
    article = help_center.get(hit.slug) if hit is not None else None
    return article.topic if article is not None else None


def _escalate(state: BotState, ctx: BotContext, message: str) -> BotTurn:
    help_center = ctx.help_center or load_help_center()
    topic = escalation_topic(state.last_slug, ctx.topic, help_center)
    summary = handover_summary(state, ctx)
    state = replace(state, escalated=True, awaiting_feedback=False, offered=(), suggested=())
    return BotTurn(
        [say(message, state.reply_lang)],
        state,
        escalate=True,
        escalate_topic=topic,
        summary=summary,
    )


def handover_summary(state: BotState, ctx: BotContext) -> str:
    """One line for the agent taking the chat: the question, what the bot sent, the
    transactions it showed, the account's state."""
    lang = state.reply_lang
    help_center = ctx.help_center or load_help_center()
    titles = []
    for slug in state.answered:
        article = help_center.get(slug, lang) or help_center.get(slug)
        titles.append(article.title if article else slug)
    shown = [find_transaction(ctx.transactions, i) for i in (*state.offered, *state.watched)]
    txs = [summarize_transaction(tx, lang, ctx.tz) for tx in shown if tx is not None]
    if not txs:
        failed = [t for t in recent(ctx.transactions, 5) if t.get("status") == "failed"]
        txs = [summarize_transaction(t, lang, ctx.tz) for t in failed[:1]]
    none = "-"
    account = ctx.account
    if account is None or not account:
        account_text = none
    elif account.get("frozen"):
        account_text = ("frozen: " if lang == "en" else "已冻结：") + str(
            account.get("frozen_reason") or ""
        )
    else:
        account_text = f"{account.get('name', '')} " + ("ok" if lang == "en" else "正常")
    return say(
        "summary",
        lang,
        question=" / ".join(state.asked) or none,
        articles="、".join(titles) if titles else none,
        txs="; ".join(txs) if txs else none,
        account=account_text,
    )


def _reply_lang(state: BotState, text: str, ctx: BotContext) -> str:
    """The language of the user's text when it is clear, else the conversation's."""
    current = state.lang or (ctx.lang if ctx.lang in LANGS else "zh")
    words = strip_transaction_ids(text)
    if is_yes(words) or is_no(words) or choice_number(words, MAX_OFFERED) is not None:
        return current  # "ok", "no", "2" say nothing about the language
    return detect_lang(words, current)


def _count(value: object) -> int:
    return max(0, value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _str_tuple(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(v for v in value if isinstance(v, str))
