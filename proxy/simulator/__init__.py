"""A faithful, deterministic stand-in for api.modellix.ai (demo, tests, benchmarks).

    sim = Simulator(SimulatorConfig.fast(), clock=ManualClock())
    app = build_app(sim)              # the API origin; build_schema_app(sim): the schemas
    # or: async with running(config) as handle: handle.url, handle.schema_url, handle.sim

See ``docs/simulator.md``; ``proxy.simulator.app`` for the routes,
``proxy.simulator.schema_app`` for the api_schema documents, ``proxy.simulator.faults``
for fault injection and ``proxy.simulator.control`` for the simulator-only ``/_sim``
endpoints.
"""

from proxy.simulator.app import build_app
from proxy.simulator.clock import ManualClock
from proxy.simulator.config import SimulatorConfig
from proxy.simulator.core import Simulator, UpstreamError
from proxy.simulator.faults import FAULT_HEADER, FAULT_NAMES
from proxy.simulator.schema_app import build_schema_app
from proxy.simulator.server import RunningSimulator, run, running, serve
from proxy.simulator.state import BillingRecord, RequestRecord, Task

__all__ = [
    "FAULT_HEADER",
    "FAULT_NAMES",
    "BillingRecord",
    "ManualClock",
    "RequestRecord",
    "RunningSimulator",
    "Simulator",
    "SimulatorConfig",
    "Task",
    "UpstreamError",
    "build_app",
    "build_schema_app",
    "run",
    "running",
    "serve",
]
