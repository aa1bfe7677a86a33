"""The pure step-up core (hub/rules/stepup.py): codes, hashing, expiry, single use and the
attempt limit, checked on generated inputs."""

from __future__ import annotations

import hmac
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
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
