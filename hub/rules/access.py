"""Who may read, act on or write to a conversation. Pure: no I/O, no awaits.

Each rule takes the caller's role and id and the conversation row (None when there is
no such conversation) and returns the error to raise, or None when the caller may go on.

* A user reaches only their own chats. Anyone else's answers `not_found`, exactly like
  a chat that does not exist, so that conversation ids cannot be probed.
* An agent acts on and writes to the chats assigned to it, and reads those it holds or
  once held, and every chat of a customer it is serving now, read-only (the customer's
  history); `forbidden` otherwise: staff may know that a chat exists.
* A supervisor reads and acts on any chat; its messages are written as an agent's.
* The bot posts only to open chats (the user may close one while it answers); the
  system posts to any, e.g. the notice that follows an idle chat's close.
* A closed chat refuses a user's message with `conflict`.
* Any other role (a service token) is refused.
* Files: the participants and supervisors upload to an open chat (`may_attach`); whoever
  may read a chat may fetch its files, and everyone else gets `not_found` (`may_download`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from supporthub_core.errors import Conflict, Forbidden, HubError, NotFound

OPEN = ("bot", "queued", "assigned")


class ConversationRow(Protocol):
    """A conversation as stored: the rules read `user_id`, `agent_id` and `status`."""

    def __getitem__(self, key: str, /) -> Any: ...


def _no_such() -> NotFound:
    return NotFound("no such conversation")


def _not_assigned() -> Forbidden:
    return Forbidden("the conversation is not assigned to you")


def _someone_elses(role: str, caller_id: str, conv: ConversationRow) -> bool:
    """A user asking about another user's chat."""
    return role == "user" and conv["user_id"] != caller_id


def may_read(
    role: str,
    caller_id: str,
    conv: ConversationRow | None,
    past_agents: Collection[str] = (),
    *,
    serving_customer: bool = False,
    mentioned: bool = False,
) -> HubError | None:
    """Whether the caller may read the conversation and its history (REST).
    `past_agents`: every agent that ever held it; `serving_customer`: the agent holds an
    assigned chat of this conversation's user now; `mentioned`: a note of it @mentions the
    agent, who may then read it (only an agent's read needs these)."""
    if conv is None or _someone_elses(role, caller_id, conv):
        return _no_such()
    mine = caller_id == conv["agent_id"] or caller_id in past_agents
    if role == "agent" and not mine and not serving_customer and not mentioned:
        return Forbidden("not your conversation")
    if role not in ("user", "agent", "supervisor"):
        return Forbidden("not allowed")
    return None


def may_act(role: str, caller_id: str, conv: ConversationRow | None) -> HubError | None:
    """Whether the caller may act on the conversation: typing, read marks, notes,
    transfer, resolve, close, rate, escalate. What the chat's state allows is up to each
    use case."""
    if conv is None or _someone_elses(role, caller_id, conv):
        return _no_such()
    if role == "agent" and caller_id != conv["agent_id"]:
        return _not_assigned()
    if role not in ("user", "agent", "supervisor", "bot", "system"):
        return Forbidden("not allowed")
    return None


def may_write(role: str, sender_id: str, conv: ConversationRow | None) -> HubError | None:
    """Whether a message from `role` (user, agent, bot, system) may be stored in the
    conversation now. An agent (or a supervisor, who writes as one) must hold the chat
    while it is assigned."""
    if conv is None or _someone_elses(role, sender_id, conv):
        return _no_such()
    if role == "user" and conv["status"] not in OPEN:
        return Conflict("the conversation is closed")
    if role == "agent" and (conv["agent_id"] != sender_id or conv["status"] != "assigned"):
        return _not_assigned()
    if role == "bot" and conv["status"] not in OPEN:
        return Conflict("the conversation is closed")
    if role not in ("user", "agent", "bot", "system"):
        return Forbidden("not allowed")
    return None


def may_attach(role: str, caller_id: str, conv: ConversationRow | None) -> HubError | None:
    """Whether the caller may upload a file to the conversation: its participants (the
    user who owns it, the agent it is assigned to) and supervisors, while it is open."""
    refusal = may_act(role, caller_id, conv)
    if refusal is not None or conv is None or role not in ("user", "agent", "supervisor"):
        return refusal or Forbidden("not allowed")
    if conv["status"] not in OPEN:
        return Conflict("the conversation is closed")
    return None


def may_download(
    role: str, caller_id: str, conv: ConversationRow | None, past_agents: Collection[str] = ()
) -> HubError | None:
    """Whether the caller may fetch a file of the conversation: whoever may read it
    (`may_read`). Every refusal is `not_found`, as for a file that does not exist: a
    link must not tell a stranger that there is something behind it."""
    if may_read(role, caller_id, conv, past_agents) is not None:
        return NotFound("no such attachment")
    return None


def ensure(refusal: HubError | None) -> None:
    """Raise the refusal a rule returned, if any."""
    if refusal is not None:
        raise refusal
