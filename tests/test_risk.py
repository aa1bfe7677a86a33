"""The risk rules, pure: history and an attempt in, a verdict out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from payments.business_calendar import BusinessCalendar, due_time
from payments.risk import (
    ALLOW,
    Attempt,
    PastPayment,
    PayerProfile,
    RiskRules,
    assess_login,
    assess_payment,
    unusual_threshold,
)

RULES = RiskRules()
NOW = 1_000_000.0


def paid(n: int, *, start: float = NOW - 30, step: float = 1.0, amount="10.00", **kw) -> list:
    return [
        PastPayment(
            f"tx_{i:016x}",
            Decimal(amount),
            kw.get("status", "succeeded"),
            kw.get("reason"),
            start + i * step,
        )
        for i in range(n)
    ]


def attempt(amount="10.00", *, failure=None, at=NOW) -> Attempt:
    return Attempt("tx_new", Decimal(amount), at, failure)


def test_ten_payments_in_a_minute_are_allowed_the_eleventh_freezes():
    assert assess_payment(RULES, PayerProfile(recent=paid(9)), attempt()) == ALLOW
    verdict = assess_payment(RULES, PayerProfile(recent=paid(10)), attempt())
    assert verdict.freeze and verdict.rule == "velocity"
    assert [a.alert for a in verdict.alerts] == ["suspicious_activity", "account_frozen"]
    assert all(a.severity == "critical" for a in verdict.alerts)
    details = verdict.alerts[1].details
    assert details["count"] == 11 and details["window_s"] == 60.0
    assert details["rule"] == "velocity" and details["reason"] == verdict.reason
    assert details["transaction_ids"][-1] == "tx_new" and len(details["transaction_ids"]) == 11


def test_velocity_counts_only_the_window_and_only_since_the_unfreeze():
    old = paid(10, start=NOW - 200)  # long before the 60 s window
    assert assess_payment(RULES, PayerProfile(recent=old), attempt()) == ALLOW
    recent = paid(10)
    unfrozen = PayerProfile(recent=recent, counted_since=NOW - 5)
    assert assess_payment(RULES, unfrozen, attempt()) == ALLOW
    # refusals before anything happened (frozen, maintenance) are not payments made
    blocked = paid(10, status="failed", reason="account_frozen")
    assert assess_payment(RULES, PayerProfile(recent=blocked), attempt()) == ALLOW


def test_velocity_threshold_follows_the_settings():
    rules = RiskRules(velocity_max=3, velocity_window_s=10)
    assert assess_payment(rules, PayerProfile(recent=paid(2, start=NOW - 5)), attempt()) == ALLOW
    assert assess_payment(rules, PayerProfile(recent=paid(3, start=NOW - 5)), attempt()).freeze


def test_repeated_failures_freeze_on_the_failure_that_crosses_the_limit():
    failed = paid(5, status="failed", reason="insufficient_balance", start=NOW - 300, step=10)
    profile = PayerProfile(recent=failed)
    # a succeeding payment does not trip the failure rule
    assert assess_payment(RULES, profile, attempt()) == ALLOW
    verdict = assess_payment(RULES, profile, attempt(failure="invalid_payee"))
    assert verdict.freeze and verdict.rule == "repeated_failures"
    assert verdict.alerts[1].details["count"] == 6
    # four earlier failures: the fifth is still within the limit
    assert (
        assess_payment(
            RULES, PayerProfile(recent=failed[:4]), attempt(failure="insufficient_balance")
        )
        == ALLOW
    )


def test_unusual_amount_is_a_warning_alone():
    profile = PayerProfile(recent=paid(3, start=NOW - 5000), typical_amounts=[Decimal("100")] * 5)
    verdict = assess_payment(RULES, profile, attempt("6000.00"))
    assert not verdict.freeze
    [alert] = verdict.alerts
    assert (alert.alert, alert.severity) == ("suspicious_activity", "warning")
    assert alert.details["threshold"] == "5000.00"
    assert assess_payment(RULES, profile, attempt("5000.00")) == ALLOW


def test_unusual_amount_after_a_new_device_login_freezes():
    profile = PayerProfile(typical_amounts=[Decimal("100")], new_device_at=NOW - 600)
    verdict = assess_payment(RULES, profile, attempt("9000.00"))
    assert verdict.freeze and verdict.rule == "unusual_amount_new_device"
    stale = PayerProfile(typical_amounts=[Decimal("100")], new_device_at=NOW - 7200)
    assert not assess_payment(RULES, stale, attempt("9000.00")).freeze


def test_unusual_threshold_grows_with_the_users_habits():
    assert unusual_threshold(RULES, []) == Decimal("5000")
    assert unusual_threshold(RULES, [Decimal("100")]) == Decimal("5000")
    assert unusual_threshold(RULES, [Decimal("800"), Decimal("1000"), Decimal("900")]) == Decimal(
        "9000.00"
    )


def test_new_device_login():
    assert assess_login([], "phone-1") == ALLOW  # the first device is just recorded
    assert assess_login(["phone-1"], "phone-1") == ALLOW
    verdict = assess_login(["phone-1"], "tablet", device_name="iPad", ip="10.0.0.9")
    [alert] = verdict.alerts
    assert (alert.alert, alert.severity) == ("new_device_login", "warning")
    assert alert.details["device_name"] == "iPad" and alert.details["ip"] == "10.0.0.9"
    assert not verdict.freeze


@given(
    offsets=st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), max_size=40),
    max_=st.integers(min_value=1, max_value=20),
)
def test_velocity_freezes_exactly_when_the_window_holds_more_than_the_limit(offsets, max_):
    rules = RiskRules(velocity_max=max_, velocity_window_s=60)
    recent = [
        PastPayment(f"tx_{i}", Decimal("1"), "succeeded", None, NOW - off)
        for i, off in enumerate(offsets)
    ]
    verdict = assess_payment(rules, PayerProfile(recent=recent), attempt())
    in_window = sum(1 for off in offsets if off < 60) + 1
    assert verdict.freeze == (in_window > max_)
    if verdict.freeze:
        assert [a.alert for a in verdict.alerts] == ["suspicious_activity", "account_frozen"]


@given(
    amounts=st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
        max_size=30,
    ),
    amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000"), places=2),
)
def test_an_amount_alone_never_freezes(amounts, amount):
    profile = PayerProfile(typical_amounts=amounts)
    verdict = assess_payment(RULES, profile, attempt(str(amount)))
    assert not verdict.freeze
    assert bool(verdict.alerts) == (amount > unusual_threshold(RULES, amounts))


# --- business hours (settlement's pure part) ------------------------------------------

SHANGHAI = "Asia/Shanghai"


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=UTC) - timedelta(hours=8)  # Beijing wall time -> UTC


def test_due_time_inside_business_hours_is_now_plus_delay():
    cal = BusinessCalendar.parse("09:00-17:00", "0,1,2,3,4", SHANGHAI)
    now = cst(2026, 5, 6, 10, 0)  # a Wednesday
    assert due_time(now, 30, cal) == now + timedelta(seconds=30)


def test_due_time_after_hours_moves_to_the_next_window():
    cal = BusinessCalendar.parse("09:00-17:00", "0,1,2,3,4", SHANGHAI)
    assert due_time(cst(2026, 5, 6, 16, 59, 50), 30, cal) == cst(2026, 5, 7, 9, 0)
    assert due_time(cst(2026, 5, 8, 18, 0), 30, cal) == cst(2026, 5, 11, 9, 0)  # Fri -> Mon
    assert due_time(cst(2026, 5, 9, 12, 0), 30, cal) == cst(2026, 5, 11, 9, 0)  # Saturday


def test_split_windows_and_all_day():
    cal = BusinessCalendar.parse("09:00-12:00,13:00-18:00", "0,1,2,3,4,5,6", SHANGHAI)
    assert due_time(cst(2026, 5, 6, 11, 59, 50), 30, cal) == cst(2026, 5, 6, 13, 0)
    always = BusinessCalendar.parse("00:00-24:00", "0,1,2,3,4,5,6", SHANGHAI)
    now = cst(2026, 5, 9, 23, 59, 50)
    assert due_time(now, 30, always) == now + timedelta(seconds=30)


@given(
    minutes=st.integers(min_value=0, max_value=60 * 24 * 14),
    delay=st.floats(min_value=0, max_value=7200, allow_nan=False),
)
def test_due_time_is_never_early_and_always_in_business_hours(minutes, delay):
    cal = BusinessCalendar.parse("09:00-17:30", "0,1,2,3,4", SHANGHAI)
    now = cst(2026, 5, 4, 0, 0) + timedelta(minutes=minutes)
    due = due_time(now, delay, cal)
    assert due >= now + timedelta(seconds=delay)
    assert cal.is_open(due)


def test_payments_imports_run_one_way():
    """settlement -> ledger -> business_calendar: the ledger loads without the settlement
    worker, and the calendar without either."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    check = (
        "import sys, importlib; importlib.import_module(sys.argv[1]);"
        " sys.exit(sorted(set(sys.argv[2:]) & set(sys.modules)) or 0)"
    )
    for module, absent in (
        ("payments.ledger", ["payments.settlement"]),
        ("payments.business_calendar", ["payments.ledger", "payments.settlement"]),
    ):
        out = subprocess.run(
            [sys.executable, "-c", check, module, *absent], cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == 0, (module, out.stderr)
