"""One-time code challenges for step-up verification (pure state machine)."""

from __future__ import annotations

import dataclasses
import hmac
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hub.rules import verification
from hub.rules.verification import (
    DEFAULT_MAX_ATTEMPTS,
    Challenge,
    Issued,
    check,
    issue,
    recently_verified,
)

KEY = b"server-key-for-tests-0123456789ab"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = START):
        self.now = start

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def seeded(seed: int = 7):
    return random.Random(seed).randbytes


def new(clock: FakeClock | None = None, seed: int = 7, **options) -> Issued:
    now = (clock or FakeClock()).now
    return issue("u-alice", "conv-1", now, key=KEY, random_bytes=seeded(seed), **options)


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- issuing --------------------------------------------------------------------------


def test_a_challenge_is_a_fresh_six_digit_sms_code_valid_for_the_ttl():
    clock = FakeClock()
    issued = new(clock, ttl_s=120)
    challenge = issued.challenge
    assert len(issued.code) == 6 and issued.code.isdigit()
    assert challenge.channel == "sms"
    assert (challenge.user_id, challenge.conversation_id) == ("u-alice", "conv-1")
    assert challenge.issued_at == clock.now
    assert challenge.expires_at == clock.now + timedelta(seconds=120)
    assert (challenge.attempts, challenge.attempts_left, challenge.used) == (0, 5, False)


def test_the_random_source_decides_everything_random():
    assert new(seed=1) == new(seed=1)
    assert new(seed=1).code != new(seed=2).code
    zeros = issue("u", "c", START, key=KEY, random_bytes=bytes)
    assert zeros.code == "000000"  # leading zeros are kept
    assert zeros.challenge.challenge_id == "0" * 32


def test_codes_are_spread_over_all_six_digits():
    codes = [new(seed=seed).code for seed in range(300)]
    assert len(set(codes)) == len(codes)
    assert {code[0] for code in codes} == set("0123456789")


def test_the_code_is_left_out_of_the_issued_repr():
    issued = new()
    assert issued.code not in repr(issued)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl_s": 0}, "ttl_s"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"key": b"short"}, "key"),
        ({"random_bytes": lambda n: b"\x01"}, "random_bytes"),
        ({"now": datetime(2024, 5, 1, 12, 0)}, "timezone-aware"),
    ],
)
def test_bad_arguments_are_refused(options, message):
    arguments = {"key": KEY, "random_bytes": seeded(), "now": START} | options
    now = arguments.pop("now")
    with pytest.raises(ValueError, match=message):
        issue("u-alice", "conv-1", now, **arguments)


# --- checking -------------------------------------------------------------------------


def test_the_right_code_passes_once():
    clock = FakeClock()
    issued = new(clock)
    first = check(issued.challenge, issued.code, clock.advance(30), key=KEY)
    assert first.ok and first.outcome == "ok"
    assert first.challenge.verified_at == clock.now
    assert first.challenge.attempts == 1 and first.challenge.used
    again = check(first.challenge, issued.code, clock.advance(1), key=KEY)
    assert again.outcome == "used" and again.challenge == first.challenge


def test_a_wrong_code_counts_an_attempt():
    issued = new()
    checked = check(issued.challenge, wrong_code(issued.code), START, key=KEY)
    assert checked.outcome == "wrong" and not checked.ok
    assert (checked.challenge.attempts, checked.challenge.attempts_left) == (1, 4)
    assert checked.challenge.verified_at is None


def test_the_fifth_wrong_code_locks_the_challenge_even_for_the_right_one():
    issued = new()
    challenge = issued.challenge
    outcomes = []
    for _ in range(DEFAULT_MAX_ATTEMPTS):
        checked = check(challenge, wrong_code(issued.code), START, key=KEY)
        outcomes.append(checked.outcome)
        challenge = checked.challenge
    assert outcomes == ["wrong"] * 4 + ["locked"]
    assert challenge.locked and challenge.attempts_left == 0
    last = check(challenge, issued.code, START, key=KEY)
    assert last.outcome == "locked" and last.challenge == challenge


def test_the_right_code_on_the_last_attempt_still_passes():
    issued = new(max_attempts=3)
    challenge = issued.challenge
    for _ in range(2):
        challenge = check(challenge, "bad", START, key=KEY).challenge
    assert check(challenge, issued.code, START, key=KEY).ok


def test_a_code_is_refused_from_the_moment_it_expires_and_costs_no_attempt():
    clock = FakeClock()
    issued = new(clock, ttl_s=300)
    just_before = check(
        issued.challenge, issued.code, clock.now + timedelta(seconds=299.999), key=KEY
    )
    assert just_before.ok
    at_expiry = check(issued.challenge, issued.code, clock.advance(300), key=KEY)
    assert at_expiry.outcome == "expired" and at_expiry.challenge == issued.challenge
    assert issued.challenge.expired(clock.now)


@pytest.mark.parametrize("typed", ["{0}", " {0} ", "{1} {2}", "{1}-{2}", "{3}", "{1}\u3000{2}"])
def test_codes_typed_with_spaces_dashes_or_full_width_digits_pass(typed):
    issued = new()
    code = issued.code
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    submitted = typed.format(code, code[:3], code[3:], full_width)
    assert check(issued.challenge, submitted, START, key=KEY).ok


@pytest.mark.parametrize("submitted", ["", "12345", "1234567", "abcdef", "１２３４５"])
def test_malformed_codes_are_wrong_attempts(submitted):
    issued = new()
    checked = check(issued.challenge, submitted, START, key=KEY)
    assert checked.outcome == "wrong" and checked.challenge.attempts == 1


def test_the_hash_is_bound_to_the_key_the_challenge_and_the_user():
    issued = new()
    assert not check(issued.challenge, issued.code, START, key=b"another-key-0123456789").ok
    other = new(seed=99).challenge
    for moved in (
        dataclasses.replace(
            other, code_hash=issued.challenge.code_hash, salt=issued.challenge.salt
        ),
        dataclasses.replace(issued.challenge, user_id="u-mallory"),
    ):
        assert check(moved, issued.code, START, key=KEY).outcome == "wrong"


def test_codes_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(verification.hmac, "compare_digest", spy)
    issued = new()
    check(issued.challenge, "000000", START, key=KEY)
    check(issued.challenge, issued.code, START, key=KEY)
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)


def test_check_needs_an_aware_time_and_a_real_key():
    issued = new()
    with pytest.raises(ValueError, match="timezone-aware"):
        check(issued.challenge, issued.code, datetime(2024, 5, 1, 12, 0), key=KEY)
    with pytest.raises(ValueError, match="key"):
        check(issued.challenge, issued.code, START, key=b"")


def test_times_in_other_zones_compare_as_instants():
    issued = new()
    beijing = timezone(timedelta(hours=8))
    at_expiry_in_beijing = issued.challenge.expires_at.astimezone(beijing)
    assert check(issued.challenge, issued.code, at_expiry_in_beijing, key=KEY).outcome == "expired"


# --- recently verified ----------------------------------------------------------------


def verified_at(when: datetime, user_id: str = "u-alice") -> Challenge:
    issued = issue(user_id, "conv-1", when, key=KEY, random_bytes=seeded())
    return check(issued.challenge, issued.code, when, key=KEY).challenge


def test_a_verification_counts_for_ten_minutes():
    clock = FakeClock()
    history = [verified_at(clock.now)]
    assert recently_verified(history, "u-alice", clock.now)
    assert recently_verified(history, "u-alice", clock.advance(599))
    assert not recently_verified(history, "u-alice", clock.advance(1))


def test_only_the_users_own_passed_challenges_count():
    clock = FakeClock()
    pending = new(clock).challenge
    failed = check(pending, "bad", clock.now, key=KEY).challenge
    someone_else = verified_at(clock.now, user_id="u-bob")
    history = [pending, failed, someone_else]
    assert not recently_verified(history, "u-alice", clock.advance(1))
    assert recently_verified(history, "u-bob", clock.now)
    assert not recently_verified([], "u-alice", clock.now)


def test_a_verification_from_the_future_does_not_count():
    assert not recently_verified([verified_at(START + timedelta(seconds=5))], "u-alice", START)


def test_the_window_can_be_chosen():
    history = [verified_at(START)]
    later = START + timedelta(seconds=90)
    assert recently_verified(history, "u-alice", later, window_s=120)
    assert not recently_verified(history, "u-alice", later, window_s=60)


# --- properties -----------------------------------------------------------------------

ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)
submissions = st.one_of(
    st.just(True),  # the right code
    st.from_regex(r"[0-9]{6}", fullmatch=True),
    st.text(max_size=8),
)


def histories(waits: st.SearchStrategy[float]) -> st.SearchStrategy[list[tuple[float, object]]]:
    """Steps of (seconds to wait, then submit the right code (True) or this string)."""
    return st.lists(st.tuples(waits, submissions), max_size=12)


steps = histories(st.floats(0, 200, allow_nan=False))
# Whole seconds keep microseconds (six digits, like a code) out of the datetimes' repr.
steps_in_seconds = histories(st.integers(0, 200).map(float))


def typed_as(code: str) -> str:
    return "".join(code.split()).translate(
        str.maketrans("０１２３４５６７８９", "0123456789", "-－")
    )


def run(issued: Issued, history, clock: FakeClock):
    """(outcome, state before, state after, when) for each submission."""
    challenge, trail = issued.challenge, []
    for wait, submission in history:
        clock.advance(wait)
        code = issued.code if submission is True else submission
        checked = check(challenge, code, clock.now, key=KEY)
        trail.append((checked.outcome, challenge, checked.challenge, clock.now, code))
        challenge = checked.challenge
    return trail


@given(st.integers(0, 2**32), steps, st.integers(1, 6), st.floats(1, 900))
def test_a_code_is_accepted_at_most_once_in_time_and_within_the_attempts(
    seed, history, max_attempts, ttl_s
):
    clock = FakeClock()
    issued = new(clock, seed=seed, max_attempts=max_attempts, ttl_s=ttl_s)
    trail = run(issued, history, clock)
    accepted = [step for step in trail if step[0] == "ok"]
    assert len(accepted) <= 1
    for _, before, after, when, code in accepted:
        assert when < before.expires_at
        assert before.attempts < max_attempts and not before.used
        assert typed_as(code) == issued.code
        assert after.verified_at == when


@given(st.integers(0, 2**32), steps, st.integers(1, 6))
def test_attempts_are_counted_only_when_judged_and_the_end_states_stick(
    seed, history, max_attempts
):
    clock = FakeClock()
    trail = run(new(clock, seed=seed, max_attempts=max_attempts), history, clock)
    final_outcome = None
    for outcome, before, after, _, _ in trail:
        judged = outcome in ("ok", "wrong") or (outcome == "locked" and not before.locked)
        assert after.attempts == before.attempts + judged
        assert after.attempts <= max_attempts
        if final_outcome in ("used", "ok"):
            assert outcome == "used"
        if final_outcome == "locked" or before.locked:
            assert outcome == "locked"
        final_outcome = outcome


@given(st.integers(0, 2**32), ids, ids, steps_in_seconds)
def test_the_plain_code_never_appears_in_the_stored_state(seed, user_id, conversation_id, history):
    clock = FakeClock()
    issued = issue(user_id, conversation_id, clock.now, key=KEY, random_bytes=seeded(seed))
    assume(issued.code not in user_id + conversation_id)
    states = [issued.challenge] + [after for _, _, after, _, _ in run(issued, history, clock)]
    for state in states:
        assert issued.code not in repr(state)
        for value in dataclasses.astuple(state):
            if isinstance(value, bytes):
                assert issued.code.encode() not in value and issued.code not in value.hex()
            elif isinstance(value, str):
                assert issued.code not in value
