"""The end-to-end fixtures (the simulator and a proxy in front of it) for these tests too."""

from tests.e2e.conftest import http, make_stack, stack

__all__ = ["http", "make_stack", "stack"]
