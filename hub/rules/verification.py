"""Step-up verification with one-time codes, as a pure state machine.

`issue` makes a challenge and its code: the code goes to the user (by SMS), the challenge
to the store. `check` judges a submitted code and returns the outcome with the challenge's
next state, which the caller stores in place of the old one. `recently_verified` answers
"did this user pass a challenge in the last ten minutes?".

Invariants (tested with generated histories):
- The code is never stored. The challenge keeps HMAC-SHA256 under a server key, over a
  random per-challenge salt, the challenge id, the user id and the code. A 6-digit code
  has only a million values, so a plain hash, salted or not, falls to brute force from
  a leaked table; the key, kept outside the database, prevents that. Binding the ids
  stops a hash being copied onto another user's challenge.
- A challenge accepts at most one submission: the first "ok" marks it used.
- Never accepted at or after `expires_at`.
- Never accepted after `max_attempts` wrong codes; the attempt that reaches the limit
  answers "locked" at once.
- Only judged submissions count as attempts: a used, locked or expired challenge answers
  without changing.
- Codes are compared in constant time (`hmac.compare_digest`).

Nothing here reads a clock or a random source of its own: `now` (a timezone-aware
datetime) and `random_bytes` (e.g. `secrets.token_bytes`) are passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final, Literal

Channel = Literal["sms"]
Outcome = Literal["ok", "wrong", "expired", "used", "locked"]
RandomBytes = Callable[[int], bytes]

CODE_DIGITS: Final = 6
DEFAULT_TTL_S: Final = 300.0
DEFAULT_MAX_ATTEMPTS: Final = 5
RECENT_WINDOW_S: Final = 600.0
MIN_KEY_BYTES: Final = 16
_SALT_BYTES: Final = 16
_ID_BYTES: Final = 16
# 8 random bytes reduced modulo 10**6: the bias (2**64 % 10**6 / 2**64) is below 1e-13.
_CODE_SOURCE_BYTES: Final = 8
_TYPED_AS_ASCII: Final = str.maketrans("０１２３４５６７８９", "0123456789", "-－")


@dataclass(frozen=True, slots=True)
class Challenge:
    challenge_id: str
    user_id: str
    conversation_id: str
    channel: Channel
    issued_at: datetime
    expires_at: datetime
    salt: bytes
    code_hash: bytes
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    attempts: int = 0
    verified_at: datetime | None = None

    @property
    def used(self) -> bool:
        return self.verified_at is not None

    @property
    def locked(self) -> bool:
        return not self.used and self.attempts >= self.max_attempts

    @property
    def attempts_left(self) -> int:
        return max(0, self.max_attempts - self.attempts)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Issued:
    challenge: Challenge
    code: str = field(repr=False)  # for the SMS only: never logged, never stored


@dataclass(frozen=True, slots=True)
class Checked:
    outcome: Outcome
    challenge: Challenge

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def issue(
    user_id: str,
    conversation_id: str,
    now: datetime,
    *,
    key: bytes,
    random_bytes: RandomBytes,
    ttl_s: float = DEFAULT_TTL_S,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    channel: Channel = "sms",
) -> Issued:
    """A new challenge for the user, and the code to send them."""
    _require_aware(now)
    _require_key(key)
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    challenge_id = _draw(random_bytes, _ID_BYTES).hex()
    salt = _draw(random_bytes, _SALT_BYTES)
    code = _draw_code(random_bytes)
    challenge = Challenge(
        challenge_id=challenge_id,
        user_id=user_id,
        conversation_id=conversation_id,
        channel=channel,
        issued_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        salt=salt,
        code_hash=_code_hash(key, salt, challenge_id, user_id, code),
        max_attempts=max_attempts,
    )
    return Issued(challenge, code)


def check(challenge: Challenge, submitted_code: str, now: datetime, *, key: bytes) -> Checked:
    """Judge `submitted_code` at `now`; the returned challenge replaces the stored one.

    Full-width digits, spaces and dashes are accepted ("１２３ ４５６" is "123456").
    """
    _require_aware(now)
    _require_key(key)
    if challenge.used:
        return Checked("used", challenge)
    if challenge.locked:
        return Checked("locked", challenge)
    if challenge.expired(now):
        return Checked("expired", challenge)
    attempt = replace(challenge, attempts=challenge.attempts + 1)
    if _matches(key, challenge, submitted_code):
        return Checked("ok", replace(attempt, verified_at=now))
    return Checked("locked" if attempt.locked else "wrong", attempt)


def recently_verified(
    challenges: Iterable[Challenge],
    user_id: str,
    now: datetime,
    window_s: float = RECENT_WINDOW_S,
) -> bool:
    """Whether the user passed a challenge in the `window_s` seconds up to `now`
    (a verification exactly `window_s` ago no longer counts; one after `now` never does)."""
    _require_aware(now)
    since = now - timedelta(seconds=window_s)
    return any(
        c.user_id == user_id and c.verified_at is not None and since < c.verified_at <= now
        for c in challenges
    )


def _matches(key: bytes, challenge: Challenge, submitted_code: str) -> bool:
    typed = "".join(submitted_code.split()).translate(_TYPED_AS_ASCII)
    expected = challenge.code_hash
    got = _code_hash(key, challenge.salt, challenge.challenge_id, challenge.user_id, typed)
    return hmac.compare_digest(got, expected)


def _code_hash(key: bytes, salt: bytes, challenge_id: str, user_id: str, code: str) -> bytes:
    # Length-prefixed so that no two (id, user, code) triples share a message.
    parts = (salt, challenge_id.encode(), user_id.encode(), code.encode())
    message = b"".join(len(part).to_bytes(4, "big") + part for part in parts)
    return hmac.digest(key, message, hashlib.sha256)


def _draw(random_bytes: RandomBytes, size: int) -> bytes:
    drawn = random_bytes(size)
    if len(drawn) != size:
        raise ValueError(f"random_bytes({size}) returned {len(drawn)} bytes")
    return drawn


def _draw_code(random_bytes: RandomBytes) -> str:
    number = int.from_bytes(_draw(random_bytes, _CODE_SOURCE_BYTES), "big")
    return f"{number % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def _require_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the key must have at least {MIN_KEY_BYTES} bytes")
