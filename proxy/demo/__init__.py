"""``make demo``: the proxy in front of the embedded simulator, with a synthetic workload."""

from proxy.demo.runner import run_demo

__all__ = ["run_demo"]
