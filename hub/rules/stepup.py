"""Step-up verification, the pure part: one-time codes and the verdict on a submitted code.

No I/O and no clock of its own: the random source, the key and the time are passed in, so
every rule can be checked with generated inputs.

- A code is `digits` decimal digits drawn from the injected `randbelow` (production:
  `secrets.randbelow`).
- Only an HMAC-SHA256 of the code is kept, keyed with a secret and bound to the challenge
  id, so a copy of the stored hash neither reveals the code nor lets one test guesses
  offline, and one hash is no use for another challenge.
- A challenge is single use, expires, and allows `max_attempts` wrong codes; the last
  allowed wrong code locks it, and after that even the right code is refused.
- Codes are compared in constant time (`hmac.compare_digest` on the hashes).
- Only judged submissions count: a used, locked, superseded or expired challenge answers
  without changing, and an expired code costs no attempt.
- The plain code is in no field of a challenge, in any state.

Misuse is refused with ValueError rather than judged: a naive `now` (expiry compares
instants), a key shorter than `MIN_KEY_BYTES`, a `ttl_s` that is not positive or fewer
than one attempt.

(This is the only step-up core; an earlier second design, with a salt per challenge and
the user id in the hash, was folded in here: the challenge id is random and unique, so it
already does a salt's work, and binding the user adds nothing a database writer could not
undo by setting `status` directly.)
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

CODE_DIGITS = 6
MAX_ATTEMPTS = 5
MIN_KEY_BYTES = 16

Status = Literal["pending", "passed", "locked", "superseded"]
Reason = Literal["wrong_code", "expired", "used", "locked", "superseded"]


@dataclass(frozen=True, slots=True)
class Challenge:
    challenge_id: str
    user_id: str
    code_hash: str
    expires_at: datetime
    attempts: int = 0
    status: Status = "pending"
    verified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: Reason | None
    attempts_left: int
    challenge: Challenge  # its state after this submission


def new_code(randbelow: Callable[[int], int], digits: int = CODE_DIGITS) -> str:
    """`digits` decimal digits, leading zeros kept."""
    return str(randbelow(10**digits)).zfill(digits)


def derive_key(secret: str) -> bytes:
    """The code-hashing key, derived from the hub secret (never the secret itself)."""
    return hmac.new(secret.encode(), b"supporthub.stepup.v1", hashlib.sha256).digest()


def hash_code(key: bytes, challenge_id: str, code: str) -> str:
    _require_key(key)
    message = f"{challenge_id}\x00{normalize(code)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def normalize(code: str) -> str:
    """What the user typed, as digits: full-width digits (a Chinese keyboard) become ASCII,
    spaces and dashes go."""
    folded = unicodedata.normalize("NFKC", code)
    return "".join(ch for ch in folded if ch not in " -\t")


def issue(
    key: bytes, challenge_id: str, user_id: str, code: str, now: datetime, ttl_s: float
) -> Challenge:
    _require_aware(now)
    if not ttl_s > 0:
        raise ValueError("ttl_s must be positive")
    return Challenge(
        challenge_id=challenge_id,
        user_id=user_id,
        code_hash=hash_code(key, challenge_id, code),
        expires_at=now + timedelta(seconds=ttl_s),
    )


def attempts_left(challenge: Challenge, max_attempts: int = MAX_ATTEMPTS) -> int:
    return max(0, max_attempts - challenge.attempts)


def submit(
    challenge: Challenge,
    key: bytes,
    code: str,
    now: datetime,
    max_attempts: int = MAX_ATTEMPTS,
) -> Verdict:
    """The verdict on `code` for `challenge` at `now`, and the challenge's next state."""
    _require_aware(now)
    _require_key(key)
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    refusal = _refusal(challenge, now, max_attempts)
    if refusal is not None:
        return Verdict(False, refusal, attempts_left(challenge, max_attempts), challenge)
    if _matches(challenge, key, code):
        passed = replace(challenge, status="passed", verified_at=now)
        return Verdict(True, None, attempts_left(challenge, max_attempts), passed)
    return _wrong(challenge, max_attempts)


def _refusal(challenge: Challenge, now: datetime, max_attempts: int) -> Reason | None:
    """Why no code can pass this challenge any more, if so (checked before the code)."""
    if challenge.status == "passed":
        return "used"
    if challenge.status == "superseded":
        return "superseded"
    if challenge.status == "locked" or challenge.attempts >= max_attempts:
        return "locked"
    if now >= challenge.expires_at:
        return "expired"
    return None


def _matches(challenge: Challenge, key: bytes, code: str) -> bool:
    typed = hash_code(key, challenge.challenge_id, code)
    return hmac.compare_digest(typed, challenge.code_hash)


def _wrong(challenge: Challenge, max_attempts: int) -> Verdict:
    attempts = challenge.attempts + 1
    locked = attempts >= max_attempts
    after = replace(challenge, attempts=attempts, status="locked" if locked else "pending")
    return Verdict(
        False, "locked" if locked else "wrong_code", max(0, max_attempts - attempts), after
    )


def verified_within(verified_at: datetime | None, now: datetime, window_s: float) -> bool:
    """A verification passed at `verified_at` still counts at `now`."""
    _require_aware(now)
    if verified_at is None:
        return False
    return timedelta(0) <= now - verified_at <= timedelta(seconds=window_s)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def _require_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the key must have at least {MIN_KEY_BYTES} bytes")
