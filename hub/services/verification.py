"""Step-up verification: a security agent asks for it in a chat, the user gets a one-time
code out of band and types it into the widget's code box; the result goes to the user's
devices and to the agent, and a passed verification lets the account be unfrozen for a
while (`passed_verification`, which the payments service is given).

The rules (code, hash, expiry, single use, attempts) are hub/rules/stepup.py; this module
does the checks of who may ask and answer, the storage and the delivery.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import asyncpg

from hub.cluster.delivery import Delivery
from hub.rules import stepup
from hub.services.languages import Languages
from hub.services.sms import OneTimeCode, SmsSender
from hub.store import Store
from hub.store import agents as agent_store
from hub.store import audit as audit_store
from hub.store import conversations as conv_store
from hub.store import verification as verify_store
from supporthub_core.audit import AuditEntry
from supporthub_core.auth import Claims
from supporthub_core.errors import Forbidden, HubError, NotFound
from supporthub_core.settings import Settings

CHANNEL = "sms"
SECURITY_SKILL = "security"


def new_challenge_id() -> str:
    return "vc_" + secrets.token_hex(12)


class Verification:
    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        languages: Languages,
        sms: SmsSender,
        settings: Settings,
        secret: str,
        randbelow: Callable[[int], int] = secrets.randbelow,
    ) -> None:
        self.store = store
        self.delivery = delivery
        self.languages = languages
        self.sms = sms
        self.ttl_s = settings.verify_code_ttl_s
        self.max_attempts = settings.verify_max_attempts
        self._key = stepup.derive_key(secret)
        self._randbelow = randbelow

    # --- the agent asks ----------------------------------------------------------------

    async def request(self, claims: Claims, conversation_id: str) -> dict:
        """Start a challenge for the user of that conversation: store it, send the code,
        show the code box on the user's devices. Returns the `verify.challenge` frame."""
        async with self.store.acquire() as db:
            await _require_security_staff(db, claims)
            conv = await _conversation_for(db, claims, conversation_id)
        user_id = conv["user_id"]
        code = stepup.new_code(self._randbelow)
        challenge = await self._store_challenge(claims, conv, code)
        try:
            await self.sms.send_code(await self._message(challenge, code), self.ttl_s)
        except HubError:
            await self._withdraw(challenge)
            raise
        frame = challenge_frame(challenge, conversation_id, self.max_attempts)
        await self.delivery.to_user(user_id, frame)
        return frame

    async def _store_challenge(self, claims: Claims, conv, code: str) -> stepup.Challenge:
        requested = verify_store.Requested(conv["user_id"], conv["id"], claims.sub, claims.role)
        async with self.store.acquire() as db, db.transaction():
            now = await verify_store.now(db)
            challenge = stepup.issue(
                self._key, new_challenge_id(), requested.user_id, code, now, self.ttl_s
            )
            await verify_store.insert(db, challenge, requested)
            await audit_store.append(db, _request_entry(claims, challenge, conv["id"]))
        return challenge

    async def _message(self, challenge: stepup.Challenge, code: str) -> OneTimeCode:
        lang = (await self.languages.of({challenge.user_id}))[challenge.user_id]
        return OneTimeCode(
            challenge.user_id, challenge.challenge_id, code, challenge.expires_at, lang
        )

    async def _withdraw(self, challenge: stepup.Challenge) -> None:
        """The code never left: nobody can answer this challenge."""
        async with self.store.acquire() as db:
            await verify_store.save(db, replace(challenge, status="superseded"))

    # --- the user answers --------------------------------------------------------------

    async def submit(self, claims: Claims, challenge_id: str, code: str) -> dict:
        """Judge the code; tell the user's devices and the agent who asked. Returns the
        `verify.result` frame. Someone else's challenge is `not_found`, and costs its
        owner no attempt."""
        async with self.store.acquire() as db, db.transaction():
            row = await verify_store.lock(db, challenge_id)
            if row is None or row["user_id"] != claims.sub:
                raise NotFound("no such verification")
            before = verify_store.challenge_of(row)
            now = await verify_store.now(db)
            verdict = stepup.submit(before, self._key, code, now, self.max_attempts)
            if verdict.challenge != before:
                await verify_store.save(db, verdict.challenge)
            await audit_store.append(db, _result_entry(claims, row, verdict))
        frame = result_frame(verdict, row["conversation_id"])
        await self.delivery.to_user(claims.sub, frame)
        await self.delivery.to_agent(row["requested_by"], frame)
        return frame


async def passed_verification(db: asyncpg.Connection, user_id: str, window_s: float) -> dict | None:
    """The user's verification that passed within the last `window_s` seconds, if any:
    what the payments service asks before an unfreeze (it is handed this function)."""
    row = await verify_store.latest_passed(db, user_id)
    if row is None:
        return None
    if not stepup.verified_within(row["verified_at"], await verify_store.now(db), window_s):
        return None
    return {
        "challenge_id": row["id"],
        "verified_at": row["verified_at"].isoformat(),
        "requested_by": row["requested_by"],
        "conversation_id": row["conversation_id"],
    }


# --- who may ask -------------------------------------------------------------------------


async def _require_security_staff(db: asyncpg.Connection, claims: Claims) -> None:
    if SECURITY_SKILL not in await agent_store.skills(db, claims.sub):
        raise Forbidden("only agents with the security skill may verify a customer")


async def _conversation_for(db: asyncpg.Connection, claims: Claims, conversation_id: str):
    """The conversation, if the caller may verify its user: assigned to this agent, or
    any for a supervisor."""
    conv = await conv_store.get(db, conversation_id)
    if conv is None:
        raise NotFound("no such conversation")
    if claims.role != "supervisor" and conv["agent_id"] != claims.sub:
        raise Forbidden("the conversation is not assigned to you")
    return conv


# --- frames and audit entries -----------------------------------------------------------


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def challenge_frame(challenge: stepup.Challenge, conversation_id: str, max_attempts: int) -> dict:
    return {
        "type": "verify.challenge",
        "conversation_id": conversation_id,
        "challenge_id": challenge.challenge_id,
        "channel": CHANNEL,
        "expires_at": _iso(challenge.expires_at),
        "digits": stepup.CODE_DIGITS,
        "attempts_left": max_attempts,
    }


def result_frame(verdict: stepup.Verdict, conversation_id: str | None) -> dict:
    challenge = verdict.challenge
    frame = {
        "type": "verify.result",
        "challenge_id": challenge.challenge_id,
        "ok": verdict.ok,
        "attempts_left": verdict.attempts_left,
        "user_id": challenge.user_id,
        "conversation_id": conversation_id,
    }
    if verdict.reason is not None:
        frame["reason"] = verdict.reason
    if verdict.ok:
        frame["verified_at"] = _iso(challenge.verified_at)
    return frame


def _request_entry(claims: Claims, challenge: stepup.Challenge, conversation_id: str) -> AuditEntry:
    details = {
        "challenge_id": challenge.challenge_id,
        "channel": CHANNEL,
        "expires_at": _iso(challenge.expires_at),
    }
    return AuditEntry(claims.role, claims.sub, "verify.request", challenge.user_id,
                      conversation_id, details)  # fmt: skip


def _result_entry(claims: Claims, row, verdict: stepup.Verdict) -> AuditEntry:
    details = {
        "challenge_id": row["id"],
        "ok": verdict.ok,
        "reason": verdict.reason,
        "attempts_left": verdict.attempts_left,
        "requested_by": row["requested_by"],
    }
    return AuditEntry(claims.role, claims.sub, "verify.result", claims.sub,
                      row["conversation_id"], details)  # fmt: skip
