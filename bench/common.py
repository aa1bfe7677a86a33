"""Shared by the driver, the load client and the peer servers (both venvs: stdlib only)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

BARE_CHANNEL = "bench.fanout"
STORED_CHANNEL = "bench.stored"  # the stored-path limit: the bare server with --store
HUB_EVENTS_CHANNEL = "payments.events"  # CONTRACT section 4
HUB_MSGPACK = "supporthub.msgpack.v1"
HUB_JSON = "supporthub.json.v1"

# The same text supporthub renders for a `succeeded` transaction (users default to zh), so
# every server pushes frames of about the same size (~330 bytes).
TITLE = "转账成功"
BODY = "您的 {amount} CNY 转账已成功到账。"


def user_id(i: int) -> str:
    return f"bench-u{i}"


def hub_event(run: str, j: int, users: int, sent_at: float) -> dict:
    """A CONTRACT section 4 `transaction.status` event; `sent_at` rides along in data."""
    amount = f"{(j % 9000) + 10}.{j % 100:02d}"
    return {
        "event_id": f"{run}-{j}",
        "type": "transaction.status",
        "user_id": user_id(j % users),
        "occurred_at": datetime.fromtimestamp(sent_at, UTC).isoformat(),
        "transaction_id": f"tx-{run}-{j}",
        "status": "succeeded",
        "amount": amount,
        "currency": "CNY",
        "speed": "instant",
        "sent_at": sent_at,
    }


def peer_frame(run: str, j: int, users: int, sent_at: float) -> dict:
    """What the peers push: the same shape and content as a supporthub `notification`."""
    event = hub_event(run, j, users, sent_at)
    data = {k: v for k, v in event.items() if k != "type"}
    return {
        "type": "notification",
        "seq": j // users + 1,
        "notification_id": f"{run}{j:026d}"[-32:],
        "kind": "transaction.status",
        "title": TITLE,
        "body": BODY.format(amount=event["amount"]),
        "data": data,
        "ts": event["occurred_at"],
    }


def expected_for(proc: int, procs: int, users: int, events: int) -> int:
    """Events addressed to the users a client process holds (user i lives in proc i % procs;
    event j goes to user j % users)."""
    mine = [u for u in range(users) if u % procs == proc]
    full, rest = divmod(events, users)
    return sum(full + (1 if u < rest else 0) for u in mine)


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[lo]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def now() -> float:
    return time.time()
