"""Published figures of the public AI-gateway latency benchmark, beside which ours are read.

AIGatewayBench puts each gateway in front of a mock upstream that answers after 22 ms and
reports the latency the gateway adds over calling the mock directly, at several client
concurrencies. The figures below are its added p99 at 16 concurrent clients, as quoted
when this comparison was set up; the machine they were measured on is not ours, so they
place our figures, they do not rank them. ``SOURCE`` says where they come from and how far
they were checked.
"""

from __future__ import annotations

from dataclasses import dataclass

CONCURRENCY = 16
UPSTREAM_DELAY_MS = 22.0
SOURCE = (
    "AIGatewayBench (public AI-gateway latency benchmark: mock upstream answering after "
    "22 ms, added latency over direct at c = 1, 4, 16, 64), figures at c = 16 as quoted "
    "in the project's benchmark brief; not re-checked against the benchmark's own page, "
    "which a search of stored public pages did not find"
)


@dataclass(frozen=True, slots=True)
class Published:
    gateway: str
    added_p99_ms: float


FIGURES = (
    Published("LiteLLM proxy (Python)", 251.34),
    Published("Portkey gateway", 8.24),
    Published("Bifrost", 0.89),
    Published("LiteLLM gateway (Rust)", 0.33),
)
