"""Sending pushes off the event path: callers drop jobs into a bounded queue and return at
once; a few workers send them with a timeout each, retry 429/5xx/network failures with
exponential backoff (honouring Retry-After), and forget subscriptions the push service
says are gone (404/410).

Two lanes: single notifications and replies (`submit`, never waits: when the lane is
full the job is dropped and counted, the notification itself is stored and the app gets
it when it opens) go before bulk work such as a broadcast (`submit_bulk`, which waits for
room instead), so a broadcast to many devices never delays a payment notification.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from hub.background import Background
from hub.push.providers import Outcome, PushMessage, PushProvider, Result
from hub.push.subscriptions import Subscription
from hub.store import Store
from hub.store import push as push_store

log = logging.getLogger(__name__)

RETRY_AFTER_MAX_S = 600.0
SENT_FLUSH_S = 5.0

PUSHES = Counter("supporthub_push_total", "Pushes handed to push services, by outcome", ["outcome"])
PUSH_DROPS = Counter(
    "supporthub_push_dropped_total", "Pushes given up before a push service took them", ["reason"]
)
PUSH_QUEUE = Gauge("supporthub_push_queue", "Pushes waiting for a worker on this node")


@dataclass(slots=True)
class PushJob:
    subscription: Subscription
    message: PushMessage
    attempt: int = 0


class PushSender:
    def __init__(
        self,
        providers: Mapping[str, PushProvider],
        store: Store,
        *,
        workers: int = 4,
        queue_size: int = 10_000,
        timeout_s: float = 10.0,
        retries: int = 4,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.providers = dict(providers)
        self.store = store
        self.workers = max(1, workers)
        self.queue_size = max(1, queue_size)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._urgent: deque[PushJob] = deque()
        self._bulk: deque[PushJob] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._sent: set[str] = set()
        self._busy = 0
        PUSH_QUEUE.set_function(lambda: len(self._urgent) + len(self._bulk))

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, tasks: Background) -> None:
        for provider in self.providers.values():
            await provider.start()
        for i in range(self.workers):
            tasks.spawn(self._work(), f"push-worker-{i}")
        tasks.spawn(self._flush_sent_forever(), "push-sent")

    async def close(self) -> None:
        """After the workers stopped: drop pending retries, close the providers' clients."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for provider in self.providers.values():
            await provider.close()

    # --- queueing ------------------------------------------------------------------------

    def submit(self, job: PushJob) -> bool:
        """Queue a push without waiting; False (and counted) when the lane is full."""
        if len(self._urgent) >= self.queue_size:
            PUSH_DROPS.labels("queue_full").inc()
            return False
        self._urgent.append(job)
        self._ready.set()
        return True

    async def submit_bulk(self, job: PushJob) -> None:
        """Queue a push of a bulk send, waiting while the bulk lane is full."""
        while len(self._bulk) >= self.queue_size:
            self._room.clear()
            await self._room.wait()
        self._bulk.append(job)
        self._ready.set()

    @property
    def idle(self) -> bool:
        """Nothing queued, in flight or waiting for a retry."""
        return not (self._urgent or self._bulk or self._busy or self._timers)

    async def _next(self) -> PushJob:
        while True:
            if self._urgent:
                return self._urgent.popleft()
            if self._bulk:
                job = self._bulk.popleft()
                if len(self._bulk) < self.queue_size:
                    self._room.set()
                return job
            self._ready.clear()
            await self._ready.wait()

    # --- sending -------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._next()
            self._busy += 1
            try:
                await self.deliver(job)
            except Exception:
                log.exception("push to %s failed", job.subscription.id)
            finally:
                self._busy -= 1

    async def deliver(self, job: PushJob) -> Result:
        sub = job.subscription
        provider = self.providers.get(sub.kind)
        if provider is None:
            PUSH_DROPS.labels("no_provider").inc()
            return Result(Outcome.REJECTED, detail=f"no provider for {sub.kind}")
        try:
            result = await asyncio.wait_for(provider.send(sub, job.message), self.timeout_s + 1)
        except TimeoutError:
            result = Result(Outcome.RETRY, detail="timed out")
        except Exception as exc:  # a provider bug must not lose the retry
            log.warning("push provider %s failed: %r", sub.kind, exc)
            result = Result(Outcome.RETRY, detail=repr(exc))
        PUSHES.labels(result.outcome.value).inc()
        if result.outcome is Outcome.SENT:
            self._sent.add(sub.id)
        elif result.outcome is Outcome.GONE:
            log.info("push subscription %s is gone (%s); forgetting it", sub.id, result.status)
            async with self.store.acquire() as db:
                await push_store.forget(db, sub.id)
        elif result.outcome is Outcome.RETRY:
            self._retry_later(job, result)
        return result

    def _retry_later(self, job: PushJob, result: Result) -> None:
        if job.attempt >= self.retries:
            PUSH_DROPS.labels("retries_exhausted").inc()
            log.info(
                "giving up a push to %s: %s", job.subscription.id, result.detail or result.status
            )
            return
        delay = self.backoff_s * 2**job.attempt
        delay = min(self.backoff_max_s, delay * (0.5 + random.random() / 2))
        if result.retry_after_s is not None:
            delay = max(delay, min(result.retry_after_s, RETRY_AFTER_MAX_S))
        job.attempt += 1

        def due() -> None:
            self._timers.discard(timer)
            self.submit(job)

        timer = asyncio.get_running_loop().call_later(delay, due)
        self._timers.add(timer)

    async def _flush_sent_forever(self) -> None:
        while True:
            await asyncio.sleep(SENT_FLUSH_S)
            if not self._sent:
                continue
            ids, self._sent = list(self._sent), set()
            try:
                async with self.store.acquire() as db:
                    await push_store.sent(db, ids)
            except Exception as exc:
                log.debug("could not record pushes sent: %s", exc)
