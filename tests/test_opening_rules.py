"""Which opens are the same open again (hub.rules.opening), on its own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.rules.opening import open_key
from hub.rules.routing import TOPICS

topics = st.sampled_from(sorted(TOPICS))
texts = st.one_of(st.none(), st.text(max_size=40))


@given(topics, texts, st.sampled_from(["", " ", "\n"]))
def test_an_open_sent_again_has_the_same_key(topic, text, around):
    again = None if text is None else around + text + around
    assert open_key(topic, text) == open_key(topic, again)


@given(topics, topics, texts, texts)
def test_another_topic_or_another_question_is_another_chat(t1, t2, x1, x2):
    same = t1 == t2 and " ".join((x1 or "").split()) == " ".join((x2 or "").split())
    assert (open_key(t1, x1) == open_key(t2, x2)) == same
