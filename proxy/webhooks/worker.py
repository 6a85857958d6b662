"""The delivery worker: POSTs due completion webhooks, signed, with retries and a dead letter.

Every replica runs one. Deliveries are leased from the store (``lease_deliveries``), so a
delivery is attempted by one replica at a time and one that crashes mid-attempt is taken
over once its lease ends. Delivery is **at least once**: a worker that dies after the
receiver answered but before the store recorded it makes another replica send the same
delivery again, with the same ``Webhook-Id``; receivers deduplicate on that id.

An attempt succeeds on any 2xx answer. Anything else (an error status, a redirect, a
timeout, a refused connection, a host the SSRF guard refuses) is retried with exponential
backoff (``webhooks.base_delay_seconds`` doubling up to ``max_delay_seconds``, with
jitter) until ``webhooks.max_attempts``, then the delivery is dead-lettered (state
``dead``); ``POST /admin/webhooks/deliveries/{id}/redeliver`` makes it due again.
Delivered and dead rows are deleted ``webhooks.keep_seconds`` (30 days) after the job ended.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import aiohttp
import structlog
from yarl import URL

from proxy import __version__
from proxy.catalog.netguard import DnsResolver, GuardError, HostGuard
from proxy.catalog.preflight import GuardedResolver
from proxy.config import Settings
from proxy.stores.base import WebhookStore
from proxy.stores.webhook_records import Delivery
from proxy.telemetry.metrics import Metrics
from proxy.webhooks import signing
from proxy.webhooks.backoff import retry_delay

log = structlog.get_logger("proxy.webhooks")
COUNTS_EVERY_SECONDS = 10.0  # and old delivered/dead rows are purged, a batch at a time
PURGE_BATCH = 500
_MAX_ANSWER_BYTES = 4096  # what is read of a receiver's answer (then dropped)


class DeliveryWorker:
    """Delivers due webhooks every ``webhooks.tick_seconds`` while the app runs."""

    def __init__(
        self,
        store: WebhookStore,
        settings: Settings,
        metrics: Metrics,
        owner: str,
        *,
        clock: Callable[[], float] = time.time,
        resolver: DnsResolver | None = None,
    ) -> None:
        master = settings.webhook_signing_secret()
        if master is None:
            raise ValueError("webhooks need a signing secret")
        self._master = master
        self._store = store
        self._settings = settings.webhooks
        self._metrics = metrics
        self._owner = owner
        self._clock = clock
        self._guard = HostGuard(self._settings.allow_hosts, resolver=resolver)
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random()
        self._counted_at = float("-inf")
        self.delivered = 0

    async def run(self) -> None:
        """Deliver what is due, until cancelled; a full batch is followed at once by the next."""
        try:
            while True:
                try:
                    leased = await self.tick()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhooks.tick_failed", owner=self._owner)
                    leased = 0
                if leased < self._settings.batch_size:
                    await asyncio.sleep(self._settings.tick_seconds)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def tick(self) -> int:
        """Lease due deliveries and attempt them all concurrently; how many were leased."""
        s = self._settings
        now = self._clock()
        due = await self._store.lease_deliveries(self._owner, now, s.batch_size, s.lease_seconds)
        if due:
            outcomes = await asyncio.gather(
                *(self._attempt(d) for d in due), return_exceptions=True
            )
            for delivery, outcome in zip(due, outcomes, strict=True):
                if isinstance(outcome, BaseException):  # the store failed: the lease runs out
                    log.error(
                        "webhook.attempt_unrecorded",
                        delivery_id=delivery.delivery_id,
                        error=repr(outcome),
                    )
        if due or time.monotonic() - self._counted_at >= COUNTS_EVERY_SECONDS:
            self._counted_at = time.monotonic()
            await self._store.purge_deliveries(now - s.keep_seconds, PURGE_BATCH)
            for state, n in (await self._store.delivery_counts()).items():
                self._metrics.webhook_deliveries.labels(state).set(n)
        return len(due)

    async def _attempt(self, delivery: Delivery) -> None:
        body = delivery.body.encode()
        key = signing.caller_key(self._master, delivery.caller)
        headers = signing.headers(key, delivery.delivery_id, int(self._clock()), body)
        headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        status: int | None = None
        try:
            await self._vet(delivery.url)
            async with self._client().post(
                delivery.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                status = resp.status
                await resp.content.read(_MAX_ANSWER_BYTES)
            error = "" if 200 <= status < 300 else f"the receiver answered {status}"
        except GuardError as exc:
            error = f"refused by the SSRF guard: {exc.detail}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        seconds = time.perf_counter() - started
        if not error and status is not None:
            await self._store.delivery_succeeded(delivery.delivery_id, self._clock(), status)
            self._metrics.webhook_attempts.labels("delivered").inc()
            self._metrics.webhook_latency.labels("delivered").observe(seconds)
            self._metrics.webhook_delay.observe(max(0.0, self._clock() - delivery.created_at))
            self.delivered += 1
            log.info(
                "webhook.delivered",
                delivery_id=delivery.delivery_id,
                task_id=delivery.task_id,
                status=status,
                attempt=delivery.attempts + 1,
            )
            return
        await self._failed(delivery, status, error, seconds)

    async def _failed(
        self, delivery: Delivery, status: int | None, error: str, seconds: float
    ) -> None:
        s = self._settings
        attempts = delivery.attempts + 1
        retry_at: float | None = None
        if attempts < s.max_attempts:
            delay = retry_delay(
                attempts, s.base_delay_seconds, s.max_delay_seconds, s.jitter, self._rng.random()
            )
            retry_at = self._clock() + delay
        await self._store.delivery_failed(
            delivery.delivery_id, self._owner, status, error, retry_at
        )
        outcome = "failed" if retry_at is not None else "dead"
        self._metrics.webhook_attempts.labels(outcome).inc()
        self._metrics.webhook_latency.labels("failed").observe(seconds)
        log.warning(
            "webhook.failed" if retry_at is not None else "webhook.dead_lettered",
            delivery_id=delivery.delivery_id,
            task_id=delivery.task_id,
            status=status,
            error=error,
            attempt=attempts,
            retry_at=retry_at,
        )

    async def _vet(self, url: str) -> None:
        """The URL's host once more through the guard (literal addresses never reach the
        connector's resolver, names are checked again there as they are connected to)."""
        host = URL(url).raw_host
        if not host:
            raise ValueError("the callback URL has no host")
        await self._guard.resolve(host)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self._guard), use_dns_cache=False, limit=64
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds),
                trust_env=False,  # never through an environment proxy
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": f"modellix-proxy-webhooks/{__version__}"},
            )
        return self._session
