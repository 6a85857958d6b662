"""Benchmarks: ``python -m bench.run`` measures the proxy against its upstream on loopback."""
