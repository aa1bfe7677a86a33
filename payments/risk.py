"""Risk rules, pure: a payer's recent history and one attempt in, a verdict out.

No I/O and no clock: the ledger loads the history with SQL inside the payment's own
transaction (the payer's row is locked, so the history cannot change underneath) and
passes the time in. Times are POSIX seconds.

Rules (thresholds from settings, defaults from the CONTRACT):

- velocity: more than `velocity_max` outgoing payments within `velocity_window_s`
  freezes the account. The attempt counts, so with the default 10 in 60 s the 11th
  payment in the window freezes the account, and that 11th payment itself is refused
  with `account_frozen` (no money moves).
- repeated failures: a refused attempt (insufficient balance, invalid payee) that makes
  more than `failures_max` such failures within `failures_window_s` freezes the account;
  that attempt keeps its own failure reason.
- unusual amount: an amount above max(`unusual_amount_min`, factor x the median of the
  payer's recent successful payments) is a `suspicious_activity` warning on its own. It
  freezes only together with a second signal: a new device that signed in within
  `new_device_window_s` (the account-takeover pattern); the attempt is then refused.
- new device: a login from a device the user has not used before, when the user has
  other known devices, is a `new_device_login` warning; a first device is just recorded.

Only activity after the last unfreeze counts, so an agent's unfreeze is not undone by
the very payments that caused the freeze.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# refusals caused by the user's own behaviour (the others are the system's doing)
BEHAVIOUR_FAILURES = frozenset({"insufficient_balance", "invalid_payee"})
# attempts refused before they could do anything do not count as payments made
NOT_ATTEMPTS = frozenset({"account_frozen", "maintenance"})
MAX_IDS_IN_DETAILS = 20
TYPICAL_SAMPLE = 50  # how many past successful payments make the "typical amount"
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class RiskRules:
    velocity_max: int = 10
    velocity_window_s: float = 60.0
    unusual_factor: Decimal = Decimal(10)
    unusual_min: Decimal = Decimal(5000)
    failures_max: int = 5
    failures_window_s: float = 600.0
    new_device_window_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Any) -> RiskRules:
        return cls(
            velocity_max=settings.risk_velocity_max,
            velocity_window_s=settings.risk_velocity_window_s,
            unusual_factor=Decimal(str(settings.risk_unusual_amount_factor)),
            unusual_min=Decimal(str(settings.risk_unusual_amount_min)),
            failures_max=settings.risk_failures_max,
            failures_window_s=settings.risk_failures_window_s,
        )

    @property
    def history_window_s(self) -> float:
        """How far back the ledger must load history for these rules."""
        return max(self.velocity_window_s, self.failures_window_s)


@dataclass(frozen=True, slots=True)
class PastPayment:
    transaction_id: str
    amount: Decimal
    status: str
    reason: str | None
    at: float


@dataclass(frozen=True, slots=True)
class Attempt:
    """The payment being made; `failure` is the business refusal it gets without risk."""

    transaction_id: str
    amount: Decimal
    at: float
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class PayerProfile:
    recent: Sequence[PastPayment] = ()  # outgoing, at least `history_window_s` back
    typical_amounts: Sequence[Decimal] = ()  # recent successful outgoing amounts
    counted_since: float | None = None  # last unfreeze
    new_device_at: float | None = None  # latest login that raised new_device_login


@dataclass(frozen=True, slots=True)
class Alert:
    alert: str  # new_device_login, suspicious_activity, account_frozen, ...
    severity: str  # info, warning, critical
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    alerts: tuple[Alert, ...] = ()
    freeze: bool = False
    rule: str | None = None
    reason: str | None = None


ALLOW = Verdict()


def _counted(p: PastPayment, since: float | None, start: float) -> bool:
    return p.at > start and (since is None or p.at > since)


def unusual_threshold(rules: RiskRules, typical: Sequence[Decimal]) -> Decimal:
    """Amounts above this are unusual for a payer whose typical amounts are `typical`."""
    threshold = rules.unusual_min
    if typical:
        median = Decimal(statistics.median(typical[:TYPICAL_SAMPLE]))
        threshold = max(threshold, rules.unusual_factor * median)
    return threshold.quantize(CENT)


def _freeze(rule: str, reason: str, ids: list[str], count: int, window_s: float) -> Verdict:
    details = {
        "reason": reason,
        "rule": rule,
        "transaction_ids": ids[-MAX_IDS_IN_DETAILS:],
        "count": count,
        "window_s": window_s,
    }
    return Verdict(
        alerts=(
            Alert("suspicious_activity", "critical", details),
            Alert("account_frozen", "critical", details),
        ),
        freeze=True,
        rule=rule,
        reason=reason,
    )


def assess_payment(rules: RiskRules, profile: PayerProfile, attempt: Attempt) -> Verdict:
    """The verdict on one outgoing payment attempt. When it freezes, the alerts are
    `suspicious_activity` then `account_frozen`, both critical, with the same details."""
    since = profile.counted_since
    history = sorted(profile.recent, key=lambda p: p.at)

    # velocity: payments made in the window, this one included
    start = attempt.at - rules.velocity_window_s
    made = [p for p in history if _counted(p, since, start) and p.reason not in NOT_ATTEMPTS]
    count = len(made) + 1
    if count > rules.velocity_max:
        ids = [p.transaction_id for p in made] + [attempt.transaction_id]
        window = _fmt_s(rules.velocity_window_s)
        reason = f"{count} outgoing payments within {window} s (limit {rules.velocity_max})"
        return _freeze("velocity", reason, ids, count, rules.velocity_window_s)

    # unusual amount, alone a warning; with a fresh new device, a freeze
    threshold = unusual_threshold(rules, profile.typical_amounts)
    unusual = attempt.amount > threshold
    if unusual:
        device_at = profile.new_device_at
        fresh_device = (
            device_at is not None
            and attempt.at - device_at <= rules.new_device_window_s
            and (since is None or device_at > since)
        )
        if fresh_device:
            reason = (
                f"payment of {attempt.amount} (usual at most {threshold}) "
                "shortly after a login from a new device"
            )
            return _freeze(
                "unusual_amount_new_device",
                reason,
                [attempt.transaction_id],
                1,
                rules.new_device_window_s,
            )

    # repeated failures: only a failing attempt can cross the line
    failures_verdict = None
    if attempt.failure in BEHAVIOUR_FAILURES:
        start = attempt.at - rules.failures_window_s
        failed = [
            p
            for p in history
            if _counted(p, since, start) and p.status == "failed" and p.reason in BEHAVIOUR_FAILURES
        ]
        count = len(failed) + 1
        if count > rules.failures_max:
            ids = [p.transaction_id for p in failed] + [attempt.transaction_id]
            window = _fmt_s(rules.failures_window_s)
            reason = f"{count} failed payments within {window} s (limit {rules.failures_max})"
            failures_verdict = _freeze(
                "repeated_failures", reason, ids, count, rules.failures_window_s
            )
    if failures_verdict is not None:
        return failures_verdict

    if unusual:
        details = {
            "rule": "unusual_amount",
            "reason": f"payment of {attempt.amount} is above the usual {threshold}",
            "transaction_ids": [attempt.transaction_id],
            "amount": str(attempt.amount),
            "threshold": str(threshold),
        }
        return Verdict(
            alerts=(Alert("suspicious_activity", "warning", details),), rule="unusual_amount"
        )
    return ALLOW


def assess_login(
    known_devices: Collection[str],
    device_id: str,
    *,
    device_name: str | None = None,
    ip: str | None = None,
) -> Verdict:
    """A login: a device not seen before, for a user with other devices, is a warning."""
    if device_id in known_devices or not known_devices:
        return ALLOW
    details: dict[str, Any] = {"device_id": device_id, "known_devices": len(known_devices)}
    if device_name:
        details["device_name"] = device_name
    if ip:
        details["ip"] = ip
    return Verdict(alerts=(Alert("new_device_login", "warning", details),), rule="new_device")


def _fmt_s(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
