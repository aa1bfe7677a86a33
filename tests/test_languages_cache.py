"""The users' languages the notifier renders with: an entry past its time serves once
more while it is read again in the background (no query on a batch's path); a user not
in the cache, or forgotten after a change, is read at once."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.usefixtures("clean")


async def test_a_stale_language_serves_while_it_is_read_again(hub, db):
    user_id = f"u-{uuid.uuid4().hex[:8]}"
    await db.execute("insert into users (id, lang) values ($1, 'en')", user_id)
    languages = hub.hub.languages
    assert (await languages.locales({user_id}))[user_id][0] == "en"

    await db.execute("update users set lang = 'zh' where id = $1", user_id)
    lang, tz, _ = languages._cache[user_id]
    languages._cache[user_id] = (lang, tz, 0.0)  # past its time
    assert (await languages.locales({user_id}))[user_id][0] == "en"  # no wait for a query
    await languages.refreshed()
    assert (await languages.locales({user_id}))[user_id][0] == "zh"

    await db.execute("update users set lang = 'en' where id = $1", user_id)
    languages.forget(user_id)  # a device said its language: read at once
    assert (await languages.locales({user_id}))[user_id][0] == "en"
