"""Clients that retry as docs/errors.md and docs/ledger.md say, and a record of every answer.

One logical request = one unique prompt and one ``Idempotency-Key``. A client
resends it with the same key on a connection error, a 5xx, a 429 or a 409 "in
flight", a bounded number of times within a bounded time; it stops on success,
on a definite refusal, and on 409 "outcome unknown" (the 409 answer's "check your
tasks before using a new key").

Every answer is classified: a ``500`` the proxy made itself (its envelope carries
``error_type``, or the body is not the upstream envelope at all) is ``proxy_500``;
a 502/503/504 in the envelope is a designed answer (the upstream failed or the
outcome is unknown), counted apart; a 500 in the upstream's own envelope is the
upstream's answer passed on.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

SUBMIT_PATH = "/api/v1/minimax/hailuo-02-t2v"
MAX_ATTEMPTS = 8
REQUEST_DEADLINE = 25.0
ATTEMPT_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Request:
    """One logical submit: its key, its unique prompt, and the virtual key it uses."""

    key: str
    prompt: str
    token: str

    def body(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "duration": 6, "resolution": "768P"}


@dataclass
class Result:
    """What the client finally learned about one logical request."""

    request: Request
    final: str = "gave_up"  # accepted | unknown | refused | gave_up
    task_id: str | None = None
    attempts: int = 0
    answers: list[str] = field(default_factory=list)
    error_types: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """Every answer of a burst, classified."""

    answers: Counter[str] = field(default_factory=Counter)
    proxy_500: int = 0
    designed_5xx: int = 0
    upstream_500: int = 0
    key_concurrency_429: int = 0
    samples_500: list[str] = field(default_factory=list)

    def add(self, status: int, doc: Any, raw: bytes) -> None:
        self.answers[str(status)] += 1
        envelope = isinstance(doc, dict) and "code" in doc and "message" in doc
        own = envelope and "error_type" in doc
        if status == 500 and (own or not envelope):
            self.proxy_500 += 1
            if len(self.samples_500) < 3:
                self.samples_500.append(raw[:300].decode(errors="replace"))
        elif status == 500:
            self.upstream_500 += 1
        elif status >= 500 and envelope:
            self.designed_5xx += 1
        elif status >= 500:
            self.proxy_500 += 1  # a 5xx that is not even in the envelope
            if len(self.samples_500) < 3:
                self.samples_500.append(raw[:300].decode(errors="replace"))
        if status == 429 and envelope and doc.get("error_type") == "key_concurrency":
            self.key_concurrency_429 += 1


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


async def submit_once(
    session: aiohttp.ClientSession, base: str, req: Request
) -> tuple[int, Any, bytes, float | None]:
    headers = {"Authorization": f"Bearer {req.token}", "Idempotency-Key": req.key}
    async with session.post(f"{base}{SUBMIT_PATH}", json=req.body(), headers=headers) as resp:
        raw = await resp.read()
        retry_after = resp.headers.get("Retry-After")
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        return resp.status, _decode(raw), raw, wait


async def run_one(
    session: aiohttp.ClientSession,
    targets: Callable[[], Sequence[str]],
    req: Request,
    tally: Tally,
    rng: random.Random,
    slot: int,
) -> Result:
    """Send ``req`` until it has an answer the documents say to stop on."""
    result = Result(req)
    deadline = time.monotonic() + REQUEST_DEADLINE
    delay = 0.2
    while result.attempts < MAX_ATTEMPTS and time.monotonic() < deadline:
        result.attempts += 1
        live = targets()
        wait: float | None = None
        if not live:
            result.answers.append("no_proxy")
        else:
            base = live[(slot + result.attempts) % len(live)]
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    status, doc, raw, wait = await submit_once(session, base, req)
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.answers.append(type(exc).__name__)
            else:
                tally.add(status, doc, raw)
                result.answers.append(str(status))
                error_type = doc.get("error_type") if isinstance(doc, dict) else None
                if error_type:
                    result.error_types.append(str(error_type))
                if status == 200:
                    data = doc.get("data") if isinstance(doc, dict) else None
                    task_id = data.get("task_id") if isinstance(data, dict) else None
                    result.final, result.task_id = "accepted", task_id
                    return result
                if status == 409 and error_type == "idempotency_outcome_unknown":
                    result.final = "unknown"
                    return result
                if status < 500 and status not in (409, 429):
                    result.final = "refused"
                    return result
                if status == 504:
                    result.final = "unknown"  # resent below with the same key, as told
        pause = min(wait if wait is not None else delay, 2.0) * rng.uniform(0.8, 1.2)
        await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)
    return result


async def burst(
    targets: Callable[[], Sequence[str]], requests: Sequence[Request], tally: Tally, seed: int
) -> list[Result]:
    """Send every request at once, each with its own bounded retries."""
    rng = random.Random(seed)
    connector = aiohttp.TCPConnector(limit=len(requests) + 10, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        return await asyncio.gather(
            *(run_one(session, targets, r, tally, rng, i) for i, r in enumerate(requests))
        )
