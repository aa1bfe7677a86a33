"""Prometheus collectors. Counters are bumped on hot paths, so keep labels few."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

CONNECTIONS = Gauge("supporthub_connections", "Open WebSocket connections on this node", ["role"])


class HotCounter:
    """A counter for per-frame paths: a plain int bump, read only when scraped
    (prometheus_client's Counter takes a lock on every inc)."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0

    def inc(self, n: int = 1) -> None:
        self.value += n


FRAMES_IN = HotCounter()
FRAMES_OUT = HotCounter()
FRAMES_DIRECT = HotCounter()


class _HotCollector:
    def collect(self):
        for name, doc, counter in (
            ("supporthub_frames_in", "Frames received from clients", FRAMES_IN),
            ("supporthub_frames_out", "Frames queued to clients", FRAMES_OUT),
            (
                "supporthub_frames_direct",
                "Frames written straight to the socket, without ASGI (hub.ws.uvicorn_fast)",
                FRAMES_DIRECT,
            ),
        ):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], counter.value)
            yield family


REGISTRY.register(_HotCollector())
BAD_FRAMES = Counter("supporthub_bad_frames_total", "Frames refused with an error", ["code"])
WS_WITHOUT_FAST_PATH = Counter(
    "supporthub_ws_without_fast_path_total",
    "WebSocket connections whose server protocol allows no direct writes (all through ASGI)",
)
QUEUE_DROPS = Counter(
    "supporthub_queue_drops_total", "Connections dropped because their send queue was full"
)
STREAM_GAPS = Counter(
    "supporthub_stream_gaps_total",
    "Gaps in a socket's stream (a frame ahead of an earlier one) still open after the"
    " wait: fetched from the store, or the socket cut off (1013) with too many waiting",
    ["outcome"],
)
SLOW_CONSUMERS = Counter(
    "supporthub_slow_consumers_total",
    "Connections cut off (1013) for not reading: too many frames or too many bytes waiting",
    ["reason"],
)
SLOW_CONSUMER_BYTES = Histogram(
    "supporthub_slow_consumer_buffered_bytes",
    "Bytes waiting for a connection (queue and transport) when it was cut off",
    buckets=(
        64 * 1024,
        256 * 1024,
        1024 * 1024,
        4 * 1024 * 1024,
        16 * 1024 * 1024,
        64 * 1024 * 1024,
    ),
)
WS_REFUSED = Counter(
    "supporthub_ws_refused_total",
    "WebSocket connections refused by an address limit (accepted, then closed)",
    ["reason"],
)
LIMITS_LOCAL = Counter(
    "supporthub_limits_local_total",
    "Limit checks counted in this process because Redis was unavailable (hub.limits)",
)
SESSIONS_EXPIRED = Counter(
    "supporthub_sessions_expired_total",
    "WebSocket sessions closed (4001) because their token's exp passed unrefreshed",
)
BUS_LAG = Histogram(
    "supporthub_bus_lag_seconds",
    "Time from publish to delivery on this node (self-probe)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BUS_HEALTHY = Gauge("supporthub_bus_healthy", "1 while the Redis bus hears its own probes")
BUS_RECONNECTS = Counter("supporthub_bus_reconnects_total", "Redis pub/sub reconnects")
HUB_NODES = Gauge("supporthub_hub_nodes", "Live hub nodes as this node sees them (event ring)")
WRITER_BATCH = Histogram(
    "supporthub_writer_batch_size",
    "Writes per group commit",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000),
)
WRITER_COMMIT = Histogram(
    "supporthub_writer_commit_seconds",
    "Time one group commit takes, from its first statement to COMMIT (retries included)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITER_RESTARTS = Counter(
    "supporthub_writer_restarts_total", "Group writer tasks that died (and were replaced)"
)
NOTIFICATIONS_NUMBERED_AGAIN = Counter(
    "supporthub_notifications_numbered_again_total",
    "Notification batches written again: a seq taken meanwhile, or an event stored before",
    ["reason"],
)
QUEUE_LENGTH = Gauge("supporthub_queue_length", "Chats waiting for an agent", ["priority"])
QUEUE_WAIT = Histogram(
    "supporthub_queue_wait_seconds",
    "Time a chat waited in the queue before assignment",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800),
)
SLA_BREACHES = Counter(
    "supporthub_sla_breaches_total",
    "Chats that breached a service-level target, by target and what was done",
    ["kind", "action"],
)
UNANSWERED = Counter(
    "supporthub_unanswered_total",
    "New chats their agent did not answer in time, by whether someone else could take them",
    ["reoffered"],
)
EVENTS_IN = Counter("supporthub_payment_events_total", "Payment events handled", ["type"])


class BatchHistogram:
    """A histogram observed a batch at a time, for per-event values on hot paths: one
    sort and a bisection per bucket instead of a locked `Histogram.observe` per value.
    Exposed like a prometheus_client Histogram (`_bucket`, `_sum`, `_count`)."""

    def __init__(
        self,
        name: str,
        doc: str,
        buckets: Iterable[float],
        registry: CollectorRegistry | None = REGISTRY,
    ):
        self.name, self.doc = name, doc
        self.bounds = tuple(float(b) for b in buckets)
        self.cumulative = [0] * len(self.bounds)  # values <= each bound, since start
        self.count = 0
        self.sum = 0.0
        if registry is not None:
            registry.register(self)

    def observe_many(self, values: list[float]) -> None:
        if not values:
            return
        ordered = sorted(values)
        for i, bound in enumerate(self.bounds):
            self.cumulative[i] += bisect_right(ordered, bound)
        self.count += len(ordered)
        self.sum += math.fsum(ordered)

    def collect(self):
        family = HistogramMetricFamily(self.name, self.doc)
        bounds = [*map(floatToGoString, self.bounds), "+Inf"]
        family.add_metric(
            [], list(zip(bounds, [*self.cumulative, self.count], strict=True)), self.sum
        )
        yield family


OUTBOX_LAG = BatchHistogram(
    "supporthub_outbox_lag_seconds",
    "Time from a payment event (its occurred_at in the payments outbox) to its notification"
    " stored and pushed by this node, by the live channel or the outbox poll",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
EVENTS_REJECTED = Counter(
    "supporthub_payment_events_rejected_total",
    "payments.events messages dropped: not signed with the events key, or not in the signed form",
    ["reason"],
)
POSITION_REPAIRS = Counter(
    "supporthub_position_repairs_total",
    "Connections found behind the store by the periodic position check and caught up",
)
ATTACHMENTS_STORED = Counter(
    "supporthub_attachments_stored_total", "Files uploaded and stored", ["kind"]
)
ATTACHMENTS_REFUSED = Counter(
    "supporthub_attachments_refused_total",
    "Uploads refused: too_large, type (by content), image (damaged or a pixel bomb), scan",
    ["reason"],
)
MAIL_IN = Counter(
    "supporthub_mail_in_total",
    "Mail to the support address: opened, continued, duplicate, ignored (automatic mail),"
    " refused:<verdict> (unknown_sender, unverified_address, auth_failed, no_auth)",
    ["outcome"],
)
MAIL_OUT = Counter(
    "supporthub_mail_out_total", "Mail sent to the relay: sent, failed (retried later)", ["result"]
)
