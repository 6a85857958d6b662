"""Which fault, if any, a request meets.

A fault is chosen, first match wins, from:

1. the request header ``X-Simulator-Fault: <name>``;
2. a marker ``[sim:<name>]`` inside the JSON body's ``prompt`` (submits only), so
   a proxy that forwards bodies unchanged can still trigger one;
3. the queue filled by ``Simulator.inject(name, count, route)`` or
   ``POST /_sim/faults`` (a burst: the next ``count`` matching requests);
4. the seeded rates of ``SimulatorConfig`` (submit and poll only), drawn from
   ``random.Random`` seeded by ``config.seed`` so a run is reproducible.

Faults:

=========================  ===================================================
``500`` ``502`` ``503``    answer that status in the upstream envelope
``429``                    rate limited, with ``X-RateLimit-Reset``/``-Remaining``
``reset_before_create``    read the request, create nothing, reset the TCP connection
``reset_after_create``     create the (billable) task, then reset the connection
``stall``                  hold the answer ``stall_seconds`` (submit: task created first)
``malformed``              200 with a body that is not JSON (submit: task created first)
``task_failed``            the task ends ``failed`` (submit only)
``content_policy``         the task ends ``failed``, message ``Content policy violation: ...``
``task_cancelled``         the task ends ``cancelled`` (never billed)
``content_policy_submit``  the submit is refused 400 ``Content policy violation: ...``
=========================  ===================================================

On a route other than submit, the task faults are ignored, and both resets
mean "reset without answering".
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from proxy.simulator.config import SimulatorConfig
from proxy.simulator.state import RouteKind

FaultName = Literal[
    "500",
    "502",
    "503",
    "429",
    "reset_before_create",
    "reset_after_create",
    "stall",
    "malformed",
    "task_failed",
    "content_policy",
    "content_policy_submit",
    "task_cancelled",
]
FAULT_NAMES: frozenset[str] = frozenset(get_args(FaultName))
FaultRoute = Literal["submit", "poll", "any"] | RouteKind
FAULT_HEADER = "X-Simulator-Fault"
TASK_FAULTS: frozenset[str] = frozenset(
    {"task_failed", "content_policy", "content_policy_submit", "task_cancelled"}
)
OUTCOME_FAULTS: frozenset[str] = frozenset({"task_failed", "content_policy", "task_cancelled"})
"""The faults that decide how an accepted task ends."""
_MARKER = re.compile(r"\[sim:([a-z0-9_]+)\]")


def is_fault_name(name: str) -> bool:
    return name in FAULT_NAMES


def applies(fault: str, route: RouteKind) -> bool:
    """Whether ``fault`` means anything on ``route``."""
    return route == "submit" or fault not in TASK_FAULTS


def marker_in(body: Mapping[str, Any] | None) -> str | None:
    """The fault named by a ``[sim:<name>]`` marker in the body's prompt."""
    if body is None:
        return None
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        return None
    for match in _MARKER.finditer(prompt):
        if is_fault_name(match.group(1)):
            return match.group(1)
    return None


@dataclass(slots=True)
class Injection:
    """A queued burst of one fault."""

    name: FaultName
    remaining: int
    route: str

    def matches(self, route: RouteKind) -> bool:
        return (self.route in ("any", route)) and applies(self.name, route)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "remaining": self.remaining, "route": self.route}


class FaultPlan:
    """The queue of injected faults plus the seeded per-request rates."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._rng = random.Random(f"{config.seed}:faults")
        self._outcomes = random.Random(f"{config.seed}:outcomes")
        self.queue: list[Injection] = []

    def inject(self, name: str, count: int = 1, route: str = "any") -> None:
        """Queue ``name`` for the next ``count`` requests on ``route``."""
        if not is_fault_name(name):
            raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULT_NAMES)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        self.queue.append(Injection(name, count, route))  # type: ignore[arg-type]

    def clear(self) -> None:
        self.queue.clear()

    def choose(
        self,
        route: RouteKind,
        header: str | None,
        body: Mapping[str, Any] | None = None,
    ) -> str | None:
        """The request fault for one request, consuming a queued one if used."""
        if header and is_fault_name(header.strip()) and applies(header.strip(), route):
            return header.strip()
        if route == "submit" and (marked := marker_in(body)) is not None:
            return marked
        for injection in self.queue:
            if injection.matches(route):
                injection.remaining -= 1
                if injection.remaining <= 0:
                    self.queue.remove(injection)
                return injection.name
        return self._draw(route)

    def _draw(self, route: RouteKind) -> str | None:
        if route not in ("submit", "poll"):
            return None
        c = self._config
        bands: list[tuple[str, float]] = [
            ("500", c.rate_500),
            ("503", c.rate_503),
            ("429", c.rate_429),
            ("stall", c.rate_stall),
            ("malformed", c.rate_malformed),
        ]
        if route == "submit":
            bands += [
                ("reset_before_create", c.rate_reset_before_create),
                ("reset_after_create", c.rate_reset_after_create),
            ]
        return _pick(self._rng.random(), bands)

    def draw_outcome(self) -> str | None:
        """``task_failed``, ``content_policy``, ``task_cancelled`` or ``None``, by rate."""
        c = self._config
        bands = [
            ("task_failed", c.rate_task_failed),
            ("content_policy", c.rate_content_policy),
            ("task_cancelled", c.rate_task_cancelled),
        ]
        return _pick(self._outcomes.random(), bands)

    def processing_seconds(self) -> float:
        low, high = self._config.processing_seconds
        return self._outcomes.uniform(low, high)


def _pick(u: float, bands: list[tuple[str, float]]) -> str | None:
    edge = 0.0
    for name, rate in bands:
        edge += rate
        if u < edge:
            return name
    return None
