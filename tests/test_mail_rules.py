"""The e-mail channel's pure rules (hub.rules.mail), with hypothesis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.rules import mail as rules

ids = st.from_regex(r"[a-z0-9.]{1,12}@[a-z]{1,8}\.test", fullmatch=True)
users = st.sampled_from(["u-a", "u-b"])
known_entry = st.builds(rules.Known, st.sampled_from(["c1", "c2", "c3"]), users, st.booleans())
results = st.builds(
    rules.AuthResult,
    st.sampled_from(["spf", "dkim", "dmarc"]),
    st.sampled_from(["pass", "fail", "softfail", "none", "neutral", "temperror", "permerror"]),
    st.sampled_from([None, "customer.test", "evil.test"]),
)


def brackets(values: list[str]) -> str:
    return " ".join(f"<{v}>" for v in values)


@given(st.lists(ids, max_size=6), st.lists(ids, max_size=6))
def test_message_ids_are_read_in_order_once(a, b):
    got = rules.message_ids(brackets(a), brackets(b))
    assert got == list(dict.fromkeys(a + b))


@given(
    st.lists(ids, max_size=3),
    st.lists(ids, max_size=6),
    st.dictionaries(ids, known_entry, max_size=6),
    users,
)
def test_a_thread_is_only_ever_the_same_users_open_conversation(irt, refs, known, user):
    cid = rules.thread_of(brackets(irt), brackets(refs), known, user)
    if cid is None:
        assert not any(
            k.user_id == user and k.open for m, k in known.items() if m in set(irt + refs)
        )
    else:
        named = [known[m] for m in irt + refs if m in known]
        assert any(k.conversation_id == cid and k.user_id == user and k.open for k in named)


@given(ids, ids, known_entry)
def test_in_reply_to_wins_over_references(a, b, entry):
    other = rules.Known("other", entry.user_id, True)
    known = {a: rules.Known(entry.conversation_id, entry.user_id, True), b: other}
    if a != b:
        assert rules.thread_of(f"<{a}>", f"<{b}>", known, entry.user_id) == entry.conversation_id


@given(st.lists(results, max_size=5), st.booleans(), st.booleans(), st.booleans())
def test_only_a_verified_known_sender_without_a_failure_is_trusted(res, known, verified, require):
    verdict = rules.sender_verdict(
        "zhang@customer.test", known_user=known, verified=verified, results=res,
        require_auth=require,
    )  # fmt: skip
    relevant = [r for r in res if r.domain in (None, "customer.test")]
    if verdict == "trusted":
        assert known and verified
        assert not any(r.result in ("fail", "softfail", "permerror") for r in relevant)
        if require:
            assert any(r.result == "pass" for r in relevant)
    if any(r.result == "fail" for r in relevant):
        assert verdict != "trusted"
    if not known:
        assert verdict == "unknown_sender"


def test_only_our_relays_results_count():
    headers = [
        "evil.test; dkim=pass header.d=customer.test",
        "mx.hub.test; spf=fail smtp.mailfrom=zhang@customer.test; dkim=none",
    ]
    got = rules.trusted_results(headers, "mx.hub.test")
    assert [(r.method, r.result, r.domain) for r in got] == [
        ("spf", "fail", "customer.test"),
        ("dkim", "none", None),
    ]
    assert rules.trusted_results(headers, None) == []


def test_a_pass_for_another_domain_does_not_vouch():
    res = [rules.AuthResult("dkim", "pass", "evil.test")]
    verdict = rules.sender_verdict(
        "zhang@customer.test", known_user=True, verified=True, results=res, require_auth=True
    )
    assert verdict == "no_auth"


@given(st.text(max_size=40))
def test_reply_subject_has_one_re(subject):
    got = rules.reply_subject(subject, "Support")
    assert got.startswith("Re: ")
    assert rules.reply_subject(got, "Support") == got
    assert not got[4:].lower().startswith("re:")


@given(st.text(max_size=200))
def test_quoting_marks_every_line(text):
    quoted = rules.quote(text)
    assert all(line.startswith(">") for line in quoted.split("\n"))


@given(st.text(alphabet=st.characters(blacklist_characters=">\r"), min_size=1, max_size=80),
       st.text(max_size=80))  # fmt: skip
def test_the_new_part_of_a_reply_is_kept(new, old):
    new = new.strip()
    body = f"{new}\n\nOn Monday Alice wrote:\n{rules.quote(old)}"
    got = rules.strip_quoted(body)
    if new and not new.endswith(("wrote:", "写道：", "写道:")):
        assert got == new or new.startswith(got) or got.startswith(new.split("\n")[0])


@given(st.text(max_size=100), st.lists(st.tuples(st.text(max_size=10), st.text(max_size=50))))
def test_reply_body_quotes_the_thread_after_the_signature(text, thread):
    lines = [rules.ThreadLine(s, t) for s, t in thread]
    body = rules.reply_body(text, lines, "Sig")
    head, _, tail = body.partition("\n-- \nSig")
    assert head == text.strip() + "\n"
    assert all(line.startswith(">") for line in tail.strip("\n").split("\n") if line) or not tail


def test_an_html_only_mail_is_read_as_text_and_topics_are_guessed():
    from email import policy
    from email.message import EmailMessage
    from email.parser import BytesParser

    from hub.services.mail_in import body_text, guess_topic

    msg = EmailMessage()
    msg["Subject"] = "x"
    msg.set_content("<p>My account was <b>hacked</b> &amp; someone logged in</p>", subtype="html")
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    text = body_text(parsed)
    assert "<b>" not in text and "hacked" in text and "&" in text
    assert guess_topic("我的账号被盗了，有陌生设备登录") == "security"
    assert guess_topic("qwertyuiop") == "other"
