"""The e-mail channel's decisions, pure: which conversation a mail continues, whether its
sender is who the From says, the subject and quoted text of a reply.

- **Threading** (`message_ids`, `thread_of`): a mail continues the conversation of the
  newest of its `In-Reply-To` and `References` ids we know (ours or the customer's earlier
  mails), when that conversation belongs to the same user; anything else opens a new one.
- **Sender** (`sender_verdict`): only a verified address of a known user is trusted, and
  only when the relay we trust said SPF or DKIM passed for that From domain
  (`Authentication-Results` with our `authserv-id`; other such headers are the sender's
  own words and ignored). A fail of either is never trusted.
- **Reply** (`reply_subject`, `quote`): `Re: ` once, and the thread quoted with `> `.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

MSGID = re.compile(r"<([^<>\s]+)>")
_RE = re.compile(r"^\s*((re|aw|fw|fwd|回复|答复|转发)\s*[:：]\s*)+", re.IGNORECASE)
_METHOD = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
_PROP = re.compile(r"\b(header\.from|header\.d|header\.i|smtp\.mailfrom)\s*=\s*([^\s;]+)", re.I)

Verdict = Literal["trusted", "unknown_sender", "unverified_address", "auth_failed", "no_auth"]


def message_ids(*headers: str | None) -> list[str]:
    """The Message-IDs in these header values, in order, without angle brackets, once."""
    seen: list[str] = []
    for value in headers:
        for found in MSGID.findall(value or ""):
            if found not in seen:
                seen.append(found)
    return seen


def normal_id(value: str | None) -> str | None:
    """A Message-ID header's id, without angle brackets (None if it holds none)."""
    ids = message_ids(value)
    return ids[0] if ids else None


@dataclass(frozen=True, slots=True)
class Known:
    """A Message-ID the store knows: the conversation and user it belongs to."""

    conversation_id: str
    user_id: str
    open: bool


def thread_of(
    in_reply_to: str | None,
    references: str | None,
    known: Mapping[str, Known],
    user_id: str,
) -> str | None:
    """The conversation this mail continues: `In-Reply-To` first, then `References` from
    the newest (last) back; only a conversation of `user_id` that is still open. None: a
    new conversation."""
    candidates = message_ids(in_reply_to) + list(reversed(message_ids(references)))
    for mid in candidates:
        hit = known.get(mid)
        if hit is not None and hit.user_id == user_id and hit.open:
            return hit.conversation_id
    return None


@dataclass(frozen=True, slots=True)
class AuthResult:
    method: str  # spf, dkim, dmarc
    result: str  # pass, fail, softfail, none, neutral, temperror, permerror, policy
    domain: str | None  # header.from / header.d / smtp.mailfrom's domain


def parse_authentication_results(value: str) -> tuple[str, list[AuthResult]]:
    """RFC 8601 `Authentication-Results`: (authserv-id, the results), simply read."""
    head, _, rest = value.partition(";")
    authserv = head.strip().split()[0].lower() if head.strip() else ""
    results: list[AuthResult] = []
    for part in rest.split(";"):
        m = _METHOD.search(part)
        if m is None:
            continue
        domain = None
        for _key, prop in _PROP.findall(part):
            domain = prop.rpartition("@")[2].strip("<>\"'").lower() or None
            break
        results.append(AuthResult(m.group(1).lower(), m.group(2).lower(), domain))
    return authserv, results


def trusted_results(headers: Iterable[str], authserv_id: str | None) -> list[AuthResult]:
    """The results of the `Authentication-Results` headers our relay (`authserv_id`)
    wrote; none without one set."""
    if not authserv_id:
        return []
    out: list[AuthResult] = []
    for value in headers:
        server, results = parse_authentication_results(value)
        if server == authserv_id.lower():
            out.extend(results)
    return out


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def sender_verdict(
    from_address: str,
    *,
    known_user: bool,
    verified: bool,
    results: Sequence[AuthResult],
    require_auth: bool,
) -> Verdict:
    """May this mail speak for the user the From names? Only `trusted` opens or continues
    a chat; every other verdict gets the generic answer and nothing else."""
    if not known_user:
        return "unknown_sender"
    if not verified:
        return "unverified_address"
    domain = domain_of(from_address)
    relevant = [r for r in results if r.domain in (None, domain)]
    if any(r.result in ("fail", "softfail", "permerror") for r in relevant):
        return "auth_failed"
    if any(r.method in ("dkim", "spf", "dmarc") and r.result == "pass" for r in relevant):
        return "trusted"
    return "no_auth" if require_auth else "trusted"


def reply_subject(subject: str | None, fallback: str) -> str:
    """`Re: ` and the subject without its earlier reply prefixes."""
    base = _RE.sub("", (subject or "").strip()).strip() or fallback
    return f"Re: {base}"


def subject_topic_text(subject: str | None) -> str:
    """The subject without reply prefixes: what the help bot's search reads."""
    return _RE.sub("", (subject or "").strip()).strip()


def quote(text: str) -> str:
    """`text` quoted as mail quotes it: `> ` before every line."""
    return "\n".join(">" + (" " + line if line else "") for line in text.splitlines() or [""])


def strip_quoted(text: str) -> str:
    """The new part of a reply: the text above the quoted thread (`> ` lines and an
    `On ... wrote:` line before them); the whole text if nothing is left."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(">"):
            break
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if line.rstrip().endswith(("wrote:", "写道：", "写道:")) and following.startswith(">"):
            break
        kept.append(line)
    new = "\n".join(kept).strip()
    return new or text.strip()


@dataclass(frozen=True, slots=True)
class ThreadLine:
    sender: str
    text: str


def reply_body(
    text: str,
    thread: Sequence[ThreadLine],
    signature: str,
    *,
    quote_limit: int = 20,
) -> str:
    """An agent's reply as a mail body: the reply, the signature, then the thread before it
    (newest first) quoted."""
    body = [text.strip(), "", "-- ", signature.strip()]
    earlier = list(reversed(thread))[:quote_limit]
    if earlier:
        body.append("")
        for line in earlier:
            body.append(f"> {' '.join(line.sender.split())}:")
            body.append(quote(line.text))
            body.append(">")
    return "\n".join(body).rstrip() + "\n"


def hide_address(address: str) -> str:
    """An address shown back half hidden: `z***@customer.test`."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"
