"""The pure step-up core (hub/rules/stepup.py, the only one): codes, hashing, expiry,
single use and the attempt limit, checked on generated inputs."""

from __future__ import annotations

import hmac
import random
from dataclasses import astuple, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hub.rules import stepup

KEY = stepup.derive_key("test-secret")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
TTL = 300.0

codes = st.text(alphabet="0123456789", min_size=6, max_size=6)
seconds = st.floats(min_value=0, max_value=2 * TTL, allow_nan=False)


def fresh(code: str, cid: str = "vc_1") -> stepup.Challenge:
    return stepup.issue(KEY, cid, "u-1", code, T0, TTL)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


@given(st.integers(min_value=0, max_value=10**6 - 1))
def test_a_code_is_six_digits_from_the_random_source(value):
    code = stepup.new_code(lambda bound: value)
    assert len(code) == 6 and code.isdigit() and int(code) == value


def test_the_random_source_is_asked_for_the_whole_range():
    asked = []
    stepup.new_code(lambda bound: asked.append(bound) or 0)
    assert asked == [10**6]
    rng = random.Random(7)
    assert len({stepup.new_code(rng.randrange) for _ in range(200)}) > 190


@given(codes, st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_the_hash_hides_the_code_and_is_bound_to_its_challenge(code, cid, other):
    digest = stepup.hash_code(KEY, cid, code)
    assert code not in digest and len(digest) == 64
    assert digest == stepup.hash_code(KEY, cid, code)
    if other != cid:
        assert digest != stepup.hash_code(KEY, other, code)
    assert digest != stepup.hash_code(stepup.derive_key("another secret"), cid, code)


@given(codes, st.floats(min_value=0, max_value=TTL - 0.001))
def test_the_right_code_in_time_passes_once(code, s):
    verdict = stepup.submit(fresh(code), KEY, code, at(s))
    assert verdict.ok and verdict.reason is None
    assert verdict.challenge.status == "passed" and verdict.challenge.verified_at == at(s)
    again = stepup.submit(verdict.challenge, KEY, code, at(s))
    assert not again.ok and again.reason == "used"


def test_full_width_digits_and_spaces_are_the_same_code():
    challenge = fresh("012345")
    assert stepup.submit(challenge, KEY, "０１２ ３４５", at(1)).ok
    assert stepup.submit(challenge, KEY, "012-345", at(1)).ok


@given(codes, st.floats(min_value=TTL, max_value=10 * TTL))
def test_an_expired_code_never_passes_and_costs_no_attempt(code, s):
    verdict = stepup.submit(fresh(code), KEY, code, at(s))
    assert not verdict.ok and verdict.reason == "expired"
    assert verdict.challenge.attempts == 0 and verdict.attempts_left == stepup.MAX_ATTEMPTS


@given(codes, st.lists(codes, min_size=1, max_size=8))
def test_wrong_codes_count_down_then_lock_even_the_right_code_out(code, guesses):
    challenge = fresh(code)
    wrong = [g for g in guesses if g != code]
    for n, guess in enumerate(wrong[: stepup.MAX_ATTEMPTS], start=1):
        verdict = stepup.submit(challenge, KEY, guess, at(1))
        challenge = verdict.challenge
        assert not verdict.ok and verdict.attempts_left == stepup.MAX_ATTEMPTS - n
        assert verdict.reason == ("locked" if n == stepup.MAX_ATTEMPTS else "wrong_code")
    final = stepup.submit(challenge, KEY, code, at(1))
    assert final.ok == (len(wrong) < stepup.MAX_ATTEMPTS)
    if not final.ok:
        assert final.reason == "locked" and challenge.status == "locked"


submissions = st.lists(st.tuples(st.booleans(), seconds), max_size=12)


@given(codes, submissions)
def test_any_history_passes_at_most_once_and_only_within_the_rules(code, history):
    """Whatever is submitted when: at most one pass, never after expiry, never once the
    attempts are used up, and attempts never exceed the limit."""
    challenge = fresh(code)
    passes = 0
    for right, s in history:
        guess = code if right else str((int(code) + 1) % 10**6).zfill(6)
        before = challenge
        verdict = stepup.submit(challenge, KEY, guess, at(s))
        challenge = verdict.challenge
        if verdict.ok:
            passes += 1
            assert right and s < TTL and before.attempts < stepup.MAX_ATTEMPTS
        assert challenge.attempts <= stepup.MAX_ATTEMPTS
        assert challenge.attempts - before.attempts in (0, 1)
    assert passes <= 1


def test_codes_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(stepup.hmac, "compare_digest", spy)
    stepup.submit(fresh("123456"), KEY, "654321", at(1))
    assert len(calls) == 1


@given(st.integers(min_value=-100_000, max_value=1_000_000))
def test_a_verification_counts_for_its_window_only(ms):
    now = T0 + timedelta(milliseconds=ms)
    assert stepup.verified_within(T0, now, 600) == (0 <= ms <= 600_000)
    assert not stepup.verified_within(None, now, 600)


# --- folded in from the second core (hub/rules/verification.py, removed) ---------------


def test_codes_are_spread_over_all_six_digits():
    rng = random.Random(11)
    codes = [stepup.new_code(rng.randrange) for _ in range(300)]
    assert {code[0] for code in codes} == set("0123456789")
    assert all(len(code) == 6 and code.isdigit() for code in codes)


def test_the_right_code_on_the_last_attempt_still_passes():
    challenge = fresh("123456")
    for _ in range(2):
        challenge = stepup.submit(challenge, KEY, "000000", at(1), max_attempts=3).challenge
    verdict = stepup.submit(challenge, KEY, "123456", at(1), max_attempts=3)
    assert verdict.ok and verdict.attempts_left == 1


def test_a_code_is_refused_from_the_moment_it_expires():
    assert stepup.submit(fresh("123456"), KEY, "123456", at(TTL - 0.001)).ok
    at_expiry = stepup.submit(fresh("123456"), KEY, "123456", at(TTL))
    assert at_expiry.reason == "expired" and at_expiry.challenge == fresh("123456")


def test_times_in_other_zones_compare_as_instants():
    beijing = timezone(timedelta(hours=8))
    challenge = fresh("123456")
    at_expiry_in_beijing = challenge.expires_at.astimezone(beijing)
    assert stepup.submit(challenge, KEY, "123456", at_expiry_in_beijing).reason == "expired"
    assert stepup.submit(challenge, KEY, "123456", at(1).astimezone(beijing)).ok


@pytest.mark.parametrize("typed", ["{0}", " {0} ", "{1} {2}", "{1}-{2}", "{3}", "{1}\u3000{2}"])
def test_codes_typed_with_spaces_dashes_or_full_width_digits_pass(typed):
    code = "802413"
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    submitted = typed.format(code, code[:3], code[3:], full_width)
    assert stepup.submit(fresh(code), KEY, submitted, at(1)).ok


@pytest.mark.parametrize("submitted", ["", "12345", "1234567", "abcdef", "１２３４５"])
def test_malformed_codes_are_wrong_attempts(submitted):
    verdict = stepup.submit(fresh("123456"), KEY, submitted, at(1))
    assert verdict.reason == "wrong_code" and verdict.challenge.attempts == 1


def test_a_hash_moved_to_another_challenge_is_no_use():
    mine, other = fresh("123456", "vc_mine"), fresh("654321", "vc_other")
    moved = replace(other, code_hash=mine.code_hash)
    assert stepup.submit(moved, KEY, "123456", at(1)).reason == "wrong_code"
    assert not stepup.submit(mine, stepup.derive_key("another secret"), "123456", at(1)).ok


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stepup.issue(KEY, "vc", "u", "123456", T0, 0), "ttl_s"),
        (lambda: stepup.issue(KEY, "vc", "u", "123456", datetime(2026, 1, 1), TTL), "aware"),
        (lambda: stepup.issue(b"short", "vc", "u", "123456", T0, TTL), "key"),
        (lambda: stepup.submit(fresh("123456"), KEY, "123456", datetime(2026, 1, 1)), "aware"),
        (lambda: stepup.submit(fresh("123456"), b"", "123456", at(1)), "key"),
        (lambda: stepup.submit(fresh("123456"), KEY, "123456", at(1), max_attempts=0), "attempts"),
        (lambda: stepup.verified_within(T0, datetime(2026, 1, 1), 600), "aware"),
    ],
)
def test_misuse_is_refused_not_judged(call, message):
    with pytest.raises(ValueError, match=message):
        call()


steps = st.lists(
    st.tuples(seconds, st.one_of(st.just(True), codes, st.text(max_size=8))), max_size=12
)


@given(codes, steps, st.integers(1, 6), st.floats(1, 900))
def test_a_code_is_accepted_at_most_once_in_time_and_within_the_attempts(
    code, history, max_attempts, ttl_s
):
    challenge = stepup.issue(KEY, "vc_1", "u-1", code, T0, ttl_s)
    accepted = 0
    for s, submission in history:
        typed = code if submission is True else submission
        before = challenge
        verdict = stepup.submit(challenge, KEY, typed, at(s), max_attempts)
        challenge = verdict.challenge
        if verdict.ok:
            accepted += 1
            assert at(s) < before.expires_at and before.status == "pending"
            assert before.attempts < max_attempts and stepup.normalize(typed) == code
            assert challenge.verified_at == at(s)
    assert accepted <= 1


@given(codes, steps, st.integers(1, 6))
def test_attempts_count_only_wrong_judged_codes_and_end_states_stick(code, history, max_attempts):
    challenge = fresh(code)
    for s, submission in history:
        typed = code if submission is True else submission
        before = challenge
        verdict = stepup.submit(challenge, KEY, typed, at(s), max_attempts)
        challenge = verdict.challenge
        judged_wrong = verdict.reason in ("wrong_code", "locked") and before.status == "pending"
        judged_wrong = judged_wrong and before.attempts < max_attempts and at(s) < before.expires_at
        assert challenge.attempts == before.attempts + judged_wrong
        assert challenge.attempts <= max_attempts
        if before.status == "passed":
            assert verdict.reason == "used" and challenge == before
        if before.status == "locked":
            assert verdict.reason == "locked" and challenge == before


@given(codes, st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20), steps)
def test_the_plain_code_never_appears_in_the_stored_state(code, cid, user_id, history):
    assume(code not in cid + user_id)
    challenge = stepup.issue(KEY, cid, user_id, code, T0, TTL)
    states = [challenge]
    for s, submission in history:
        challenge = stepup.submit(challenge, KEY, code if submission is True else submission,
                                  at(s)).challenge  # fmt: skip
        states.append(challenge)
    for state in states:
        assert code not in repr(state)
        assert all(code not in str(value) for value in astuple(state))
