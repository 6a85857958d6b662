"""Grafana dashboards, Prometheus rules and their generators."""
