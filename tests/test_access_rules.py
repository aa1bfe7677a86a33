"""The access rule: one test per rule, then properties over random callers and chats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.rules.access import ensure, may_act, may_read, may_write
from supporthub_core.errors import Conflict, Forbidden, HubError, NotFound

STATUSES = ("bot", "queued", "assigned", "resolved", "closed")
SENDER_ROLES = ("user", "agent", "bot", "system")


def conv(status: str = "assigned", user: str = "u1", agent: str | None = "alice") -> dict:
    return {"id": "c1", "user_id": user, "agent_id": agent, "status": status}


def code(refusal: HubError | None) -> str | None:
    return None if refusal is None else refusal.code


# --- one test per rule --------------------------------------------------------------------


def test_a_missing_chat_is_not_found_for_everyone() -> None:
    for role in ("user", "agent", "supervisor", "bot", "system", "service"):
        assert code(may_read(role, "x", None)) == "not_found"
        assert code(may_act(role, "x", None)) == "not_found"
        assert code(may_write(role, "x", None)) == "not_found"


def test_the_owner_reads_acts_and_writes_while_open() -> None:
    assert may_read("user", "u1", conv()) is None
    assert may_act("user", "u1", conv()) is None
    assert may_write("user", "u1", conv()) is None


def test_another_user_is_told_the_chat_does_not_exist() -> None:
    for rule in (may_read, may_act, may_write):
        refusal = rule("user", "u2", conv())
        assert isinstance(refusal, NotFound) and refusal.message == "no such conversation"


def test_a_closed_chat_refuses_the_users_message_but_takes_a_rating() -> None:
    for status in ("resolved", "closed"):
        assert isinstance(may_write("user", "u1", conv(status)), Conflict)
        assert may_act("user", "u1", conv(status)) is None


def test_the_assigned_agent_acts_and_writes_others_are_forbidden() -> None:
    assert may_act("agent", "alice", conv()) is None
    assert may_write("agent", "alice", conv()) is None
    for rule in (may_act, may_write):
        refusal = rule("agent", "bob", conv())
        assert isinstance(refusal, Forbidden)
        assert refusal.message == "the conversation is not assigned to you"


def test_an_agent_writes_only_while_the_chat_is_assigned() -> None:
    assert may_act("agent", "alice", conv("resolved")) is None  # e.g. a late read mark
    assert isinstance(may_write("agent", "alice", conv("resolved")), Forbidden)


def test_an_agent_reads_the_chats_it_holds_or_once_held() -> None:
    assert may_read("agent", "alice", conv()) is None
    assert may_read("agent", "bob", conv(), past_agents=["bob", "alice"]) is None
    refusal = may_read("agent", "carol", conv(), past_agents=["bob"])
    assert isinstance(refusal, Forbidden) and refusal.message == "not your conversation"


def test_a_supervisor_reads_and_acts_on_any_chat_and_writes_as_an_agent() -> None:
    other = conv(agent="bob")
    assert may_read("supervisor", "sam", other) is None
    assert may_act("supervisor", "sam", other) is None
    assert isinstance(may_write("supervisor", "sam", other), Forbidden)
    assert isinstance(may_write("agent", "sam", other), Forbidden)


def test_the_bot_posts_to_open_chats_and_the_system_to_any() -> None:
    for status in STATUSES:
        open_ = status in ("bot", "queued", "assigned")
        assert (may_write("bot", "helpbot", conv(status)) is None) == open_
        assert may_write("system", "supporthub", conv(status)) is None
    assert isinstance(may_write("bot", "helpbot", conv("closed")), Conflict)


def test_a_service_token_is_refused() -> None:
    assert code(may_read("service", "hub", conv())) == "forbidden"
    assert code(may_act("service", "hub", conv())) == "forbidden"
    assert code(may_write("service", "hub", conv())) == "forbidden"


def test_ensure_raises_the_refusal_and_lets_none_pass() -> None:
    ensure(None)
    with pytest.raises(NotFound):
        ensure(may_act("user", "u2", conv()))


# --- properties ---------------------------------------------------------------------------

ids = st.sampled_from(["u1", "u2", "alice", "bob", "sam"])
roles = st.sampled_from(["user", "agent", "supervisor", "bot", "system", "service"])
convs = st.builds(conv, st.sampled_from(STATUSES), st.sampled_from(["u1", "u2"]), st.none() | ids)
past = st.lists(ids, max_size=3)


@given(ids, convs, past)
def test_a_user_learns_nothing_about_other_users_chats(caller, c, agents) -> None:
    if c["user_id"] == caller:
        return
    for refusal, missing in (
        (may_read("user", caller, c, agents), may_read("user", caller, None)),
        (may_act("user", caller, c), may_act("user", caller, None)),
        (may_write("user", caller, c), may_write("user", caller, None)),
    ):
        assert (type(refusal), refusal.message) == (type(missing), missing.message)


@given(roles, ids, st.none() | convs, past)
def test_refusals_are_only_not_found_forbidden_or_conflict(role, caller, c, agents) -> None:
    for refusal in (may_read(role, caller, c, agents), may_act(role, caller, c),
                    may_write(role, caller, c)):  # fmt: skip
        assert refusal is None or type(refusal) in (NotFound, Forbidden, Conflict)
        if role == "user":
            assert not isinstance(refusal, Forbidden)  # a user is never told a chat exists


@given(st.sampled_from(SENDER_ROLES), ids, convs)
def test_whoever_may_write_may_act(role, caller, c) -> None:
    if may_write(role, caller, c) is None:
        assert may_act(role, caller, c) is None


@given(st.sampled_from(["user", "agent", "supervisor"]), ids, convs, past)
def test_whoever_may_act_may_read(role, caller, c, agents) -> None:
    if may_act(role, caller, c) is None:
        assert may_read(role, caller, c, agents) is None


@given(ids, convs, past)
def test_serving_a_customer_opens_their_history_to_read_only(caller, c, agents) -> None:
    assert may_read("agent", caller, c, agents, serving_customer=True) is None
    if caller != c["agent_id"]:
        assert may_act("agent", caller, c) is not None
        assert may_write("agent", caller, c) is not None
