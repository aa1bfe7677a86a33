"""The help bot's conversation logic: text in, replies and decisions out.

Pure: no I/O and no awaits. The shell (the chat use case) stores `BotState` as JSON
with the conversation, fetches the user's recent transactions into `BotContext`,
sends `BotTurn.replies` as `bot` messages, escalates to the human queue when told,
and watches the listed transactions, calling `on_transaction_update` when one changes.

One turn, in order of precedence:
1. phishing or a code given away -> the anti-fraud guidance and an offer of the security
                                    team (asked for a person too: straight to it)
2. asks for a person, or "yes"
   to an offered hand-over       -> escalate (to the offered topic, if any)
3. mentions transaction ids     -> their live status (watched while processing)
4. picks from offered list      -> that transaction's status
5. answers "did it help?"       -> yes: close politely; no: a miss (2nd miss escalates)
6. greeting / thanks            -> short reply
7. "where is my money?"         -> offer the recent transactions
8. anything else                -> search: confident -> article + "did it help?";
                                   unsure -> escalate with suggestions; nothing -> a miss.
                                   About the account's safety (hacked, not me...) but no
                                   confident security article: the anti-fraud guidance,
                                   never another topic's article.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

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
from hub.helpbot.messages import TOPIC_EXAMPLES, TOPIC_NAMES, article_link, say
from hub.helpbot.search import is_confident
from hub.helpbot.text import detect_lang
from hub.helpbot.transactions import (
    Tx,
    describe_transaction,
    find_transaction,
    find_transaction_ids,
    is_pending,
    recent,
    strip_transaction_ids,
    summarize_transaction,
)

MAX_MISSES = 2
MAX_WATCHED = 10  # a chat never needs more; keeps the stored state small
MAX_OFFERED = 3
SUGGESTIONS = 3
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
    handover_topic: str | None = None  # offered in the last reply: "yes" escalates to it

    @property
    def reply_lang(self) -> str:
        """The language the bot answers in."""
        return self.lang or "zh"

    def to_dict(self) -> dict[str, object]:
        """A plain dict for storage (lists, strings, ints, bools, None)."""
        data = asdict(self)
        data["offered"], data["watched"] = list(self.offered), list(self.watched)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> BotState:
        """Rebuild a state from `to_dict()` output; unknown or malformed fields are dropped."""
        data = data or {}
        lang = data.get("lang")
        last_slug = data.get("last_slug")
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
            handover_topic=handover if handover in TOPICS else None,
        )


@dataclass(frozen=True)
class BotContext:
    """What the shell knows about the chat when the user writes."""

    lang: str = "zh"
    topic: str = "other"
    transactions: Sequence[Tx] = ()
    now: datetime | None = None  # enables "late" wording for overdue transfers
    help_center: HelpCenter | None = None  # default: the packaged help center


@dataclass(frozen=True)
class BotTurn:
    """What the bot decided for one user message or event."""

    replies: list[str]
    new_state: BotState
    escalate: bool = False
    escalate_topic: str | None = None
    watch_transactions: list[str] = field(default_factory=list)
    article: str | None = None  # slug of the article answered with, for metrics


def greeting(lang: str = "zh", topic: str = "other") -> str:
    """The bot's first message in a new chat on `topic`."""
    lang = lang if lang in LANGS else "zh"
    topic = topic if topic in TOPIC_NAMES else "other"
    return say(
        "greeting", lang, topic=TOPIC_NAMES[topic][lang], examples=TOPIC_EXAMPLES[topic][lang]
    )


def respond(state: BotState, text: str, ctx: BotContext) -> BotTurn:
    """The bot's answer to one user message."""
    if state.escalated:
        return BotTurn([], state)  # a person has the chat now; the bot stays quiet
    lang = _reply_lang(state, text, ctx)
    offered = state.handover_topic  # an offer stands for one reply only
    state = replace(state, lang=lang, resolved=False, handover_topic=None)
    if not text.strip():
        return BotTurn([say("not_understood", lang)], state)
    if asks_about_fraud(text):
        return _security_guidance(state, ctx, connect=wants_human(text))
    if wants_human(text) or (offered and accepts_offer(text)):
        turn = _escalate(state, ctx, "escalate_asked")
        topic = offered or (SECURITY_TOPIC if mentions_security(text) else None)
        return replace(turn, escalate_topic=topic) if topic else turn
    if offered and is_no(text):
        return BotTurn([say("anything_else", lang)], state)
    for step in (_by_transaction_id, _by_choice, _by_feedback, _by_small_talk, _by_where_money):
        turn = step(state, text, ctx)
        if turn is not None:
            return turn
    return _by_search(state, text, ctx)


def on_transaction_update(state: BotState, tx: Tx, now: datetime | None = None) -> BotTurn:
    """A follow-up message when a watched transaction changes status, else nothing."""
    tx_id = str(tx.get("transaction_id", ""))
    # Still sent after escalation: the user and the agent both want to see the change.
    if tx_id not in state.watched:
        return BotTurn([], state)
    lang = state.reply_lang
    text = say("tx_update", lang, text=describe_transaction(tx, lang, now))
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
        return _miss(state, ctx, "sorry_retry")
    return None  # a new question: answer it as such


def _by_small_talk(state: BotState, text: str, ctx: BotContext) -> BotTurn | None:
    lang = state.reply_lang
    if is_greeting(text):
        return BotTurn([say("greeting_reply", lang)], state)
    if is_thanks(text):
        return BotTurn([say("thanks_reply", lang)], replace(state, resolved=True))
    return None


def _by_where_money(state: BotState, text: str, ctx: BotContext) -> BotTurn | None:
    if not ctx.transactions or not asks_where_money(text):
        return None
    lang = state.reply_lang
    latest = recent(ctx.transactions, MAX_OFFERED)
    state = replace(state, last_slug="arrival-delay")
    if len(latest) == 1:
        return _tell_transactions(state, latest, ctx, [])
    lines = [f"{n}. {summarize_transaction(tx, lang)}" for n, tx in enumerate(latest, 1)]
    offered = tuple(str(tx.get("transaction_id")) for tx in latest)
    reply = "\n".join([say("offer_transactions", lang), *lines])
    return BotTurn([reply], replace(state, offered=offered), article="arrival-delay")


def _by_search(state: BotState, text: str, ctx: BotContext) -> BotTurn:
    lang = state.reply_lang
    help_center = ctx.help_center or load_help_center()
    query = strip_transaction_ids(text)
    security = mentions_security(text)
    # The anti-fraud article is for questions about fraud, which step 1 answers: a search
    # that ranks it first for "the app asks for a code" judges the other articles alone.
    hits = [
        h
        for h in help_center.search(query, lang, limit=SUGGESTIONS + 1)
        if security or h.slug != FRAUD_SLUG
    ][:SUGGESTIONS]
    hit, confident = (hits[0] if hits else None), is_confident(hits[:2], lang)
    if security and not (confident and _topic_of(hit, help_center) == SECURITY_TOPIC):
        return _security_guidance(state, ctx)  # never another topic's article, never a guess
    if hit is None:
        return _miss(state, ctx, "not_understood")
    if not confident:
        lines = [
            say("suggestion", lang, title=h.title, link=article_link(h.slug, lang)) for h in hits
        ]
        turn = _escalate(state, ctx, "escalate_unsure")
        return replace(turn, replies=["\n".join([turn.replies[0], *lines])])
    article = help_center.get(hit.slug, lang)
    assert article is not None  # the index holds only articles of the help center
    answer = say(
        "answer",
        lang,
        title=article.title,
        summary=article.summary,
        link=article_link(hit.slug, lang),
    )
    new_state = replace(state, last_slug=hit.slug, awaiting_feedback=True, offered=())
    return BotTurn([answer, say("ask_feedback", lang)], new_state, article=hit.slug)


# --- shared outcomes ------------------------------------------------------------------------


def _tell_transactions(
    state: BotState, txs: list[Tx], ctx: BotContext, replies: list[str]
) -> BotTurn:
    lang = state.reply_lang
    replies = replies + [describe_transaction(tx, lang, ctx.now) for tx in txs]
    pending = [str(tx["transaction_id"]) for tx in txs if is_pending(tx)]
    new = [i for i in pending if i not in state.watched]
    watched = (state.watched + tuple(new))[-MAX_WATCHED:]
    if new:
        replies.append(say("tx_watching", lang))
    else:
        replies.append(say("anything_else", lang))
    state = replace(state, watched=watched, awaiting_feedback=False)
    return BotTurn(replies, state, watch_transactions=new)


def _miss(state: BotState, ctx: BotContext, message: str) -> BotTurn:
    state = replace(state, misses=state.misses + 1, awaiting_feedback=False)
    if state.misses >= MAX_MISSES:
        return _escalate(state, ctx, "escalate_missed")
    return BotTurn([say(message, state.reply_lang)], state)


def _security_guidance(state: BotState, ctx: BotContext, *, connect: bool = False) -> BotTurn:
    """What to do about a scam now, and a one-tap way to the security team: "yes" (or the
    widget's escalate button) hands the chat to the `security` queue. `connect`: the user
    asked for a person as well, so hand it over at once."""
    lang = state.reply_lang
    state = replace(state, last_slug=FRAUD_SLUG, awaiting_feedback=False, offered=(), misses=0)
    guidance = say("fraud_guidance", lang, link=article_link(FRAUD_SLUG, lang))
    if connect:
        turn = _escalate(state, ctx, "fraud_connecting")
        return replace(
            turn,
            replies=[guidance, *turn.replies],
            escalate_topic=SECURITY_TOPIC,
            article=FRAUD_SLUG,
        )
    offer = replace(state, handover_topic=SECURITY_TOPIC)
    return BotTurn([guidance, say("fraud_offer", lang)], offer, article=FRAUD_SLUG)


def _topic_of(hit, help_center: HelpCenter) -> str | None:
    article = help_center.get(hit.slug) if hit is not None else None
    return article.topic if article is not None else None


def _escalate(state: BotState, ctx: BotContext, message: str) -> BotTurn:
    help_center = ctx.help_center or load_help_center()
    topic = escalation_topic(state.last_slug, ctx.topic, help_center)
    state = replace(state, escalated=True, awaiting_feedback=False, offered=())
    return BotTurn([say(message, state.reply_lang)], state, escalate=True, escalate_topic=topic)


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
