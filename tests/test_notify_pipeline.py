"""The notifier's pipeline at a light rate: an event offered to an idle notifier, for a
user whose language is known, is handed to the group writer in the offer's own loop turn
(no wait for the consumer task to wake); events whose users must be read first go through
the consumer, and a user's notifications keep the events' order either way."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.events import tx_event

pytestmark = pytest.mark.usefixtures("clean")


def _spy_on_writes(hub, monkeypatch) -> list[int]:
    """The real writer, with the size of each batch the notifier hands it recorded."""
    writer = hub.hub.store.writer
    handed: list[int] = []
    enqueue_many = writer.enqueue_many

    def recording(ops, **kwargs):
        handed.append(len(ops))
        return enqueue_many(ops, **kwargs)

    monkeypatch.setattr(writer, "enqueue_many", recording)
    return handed


async def test_a_lone_event_reaches_the_writer_in_the_offers_loop_turn(hub, db, monkeypatch):
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    await db.execute("insert into users (id, lang) values ($1, 'en')", user_id)
    notifier = hub.hub.notifier
    await hub.hub.languages.locales({user_id})  # known, as a user with events before is
    user = await hub.client(user_id)
    await notifier.flushed()
    handed = _spy_on_writes(hub, monkeypatch)

    notifier.offer([tx_event(user_id)], owned_only=True)
    assert handed == [1]  # queued with the writer before any other task ran

    got = await user.expect("notification")
    assert got["seq"] == 1
    await notifier.flushed()
    await user.close()


async def test_a_users_events_keep_their_order_when_the_first_waits_for_a_query(hub, db):
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    await db.execute("insert into users (id, lang) values ($1, 'en')", user_id)
    notifier = hub.hub.notifier
    hub.hub.languages.forget(user_id)  # the first event's batch reads the language first
    user = await hub.client(user_id)
    await notifier.flushed()

    events = [tx_event(user_id) for _ in range(3)]
    for event in events:  # one offer each: the later ones come while the first is read
        notifier.offer([event], owned_only=True)
    for seq, event in enumerate(events, start=1):
        got = await user.expect("notification")
        assert (got["seq"], got["data"]["transaction_id"]) == (seq, event["transaction_id"])
    await notifier.flushed()
    await user.close()


async def test_a_lone_event_reaches_the_users_socket_in_its_commits_loop_turn(hub, db, monkeypatch):
    """This node's sockets get the notification from the writer task that saw the COMMIT,
    not a loop turn later from the task that waits for it (the other nodes through Redis
    after that, as before)."""
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    await db.execute("insert into users (id, lang) values ($1, 'en')", user_id)
    notifier = hub.hub.notifier
    user = await hub.client(user_id)
    await notifier.flushed()
    delivered_by: list[str] = []
    local = notifier.delivery._local

    def recording(items):
        delivered_by.append(asyncio.current_task().get_name())
        return local(items)

    monkeypatch.setattr(notifier.delivery, "_local", recording)

    await notifier.handle([tx_event(user_id)])
    got = await user.expect("notification")
    assert got["seq"] == 1
    assert len(delivered_by) == 1 and delivered_by[0].startswith("group-writer")
    await user.close()
