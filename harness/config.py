"""What a proxy under test is configured with: the environment of a ``serve`` process and
the settings of an in-process app, each pointed at a given upstream and store."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from proxy.config import Settings, deep_merge, load

WATCHER_KEY = "sk-watcher-key-for-tests"
"""The upstream key ``proxy_env`` gives the proxy (its watcher polls with it)."""


def clean_environ(prefix: str = "MODELLIX_PROXY_") -> dict[str, str]:
    """This process's environment without the variables starting with ``prefix``, so a
    setting exported in the caller's shell never leaks into a proxy started here."""
    return {k: v for k, v in os.environ.items() if not k.startswith(prefix)}


def proxy_env(upstream: str, store_url: str, **extra: str) -> dict[str, str]:
    """The environment of ``modellix-proxy serve`` in front of ``upstream`` on ``store_url``:
    a quick watcher, a short shutdown grace, one process, no published schemas; ``extra``
    (``MODELLIX_PROXY_*`` names) on top. The ports are the starter's (``processes``)."""
    env = clean_environ()
    env.update(
        {
            "MODELLIX_PROXY_UPSTREAM__ORIGIN": upstream,
            "MODELLIX_PROXY_UPSTREAM__API_KEY": WATCHER_KEY,
            "MODELLIX_PROXY_STORE__URL": store_url,
            "MODELLIX_PROXY_LOGGING__LEVEL": "warning",
            "MODELLIX_PROXY_WATCHER__FIRST_CHECK_SECONDS": "0.5",
            "MODELLIX_PROXY_WATCHER__BASE_DELAY_SECONDS": "0.3",
            "MODELLIX_PROXY_WATCHER__MAX_DELAY_SECONDS": "1",
            "MODELLIX_PROXY_WATCHER__TICK_SECONDS": "0.2",
            "MODELLIX_PROXY_WATCHER__LEASE_SECONDS": "5",
            "MODELLIX_PROXY_SHUTDOWN_GRACE_SECONDS": "2",
            # One process, as these tests kill and count it (tests/e2e/test_workers.py: more).
            "MODELLIX_PROXY_WORKERS": "1",
            # No published schemas unless a test passes the simulator's schema origin
            # (MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__ORIGIN and ..._ENABLED=true).
            "MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__ENABLED": "false",
        }
    )
    env.update(extra)
    return env


def with_ports(env: Mapping[str, str], port: int, admin_port: int) -> dict[str, str]:
    """``env`` with the proxy's listen and admin ports set."""
    full = dict(env)
    full["MODELLIX_PROXY_LISTEN__PORT"] = str(port)
    full["MODELLIX_PROXY_ADMIN__PORT"] = str(admin_port)
    return full


def settings_for(origin: str, **overrides: Any) -> Settings:
    """Settings for an in-process proxy in front of ``origin``, on ephemeral ports, no admin
    listener."""
    base: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"enabled": False},
        "upstream": {
            "origin": origin,
            "retry": {"base_delay_seconds": 0.01, "max_delay_seconds": 0.05},
        },
        "logging": {"level": "warning"},
        "store": {"url": "sqlite:///:memory:"},
        "watcher": {"enabled": False},
        # no model-list fetch at start: tests count what reaches the upstream (on need only)
        # no published schemas unless a test names the simulator's schema origin
        "models": {
            "upstream_list": {"fetch_at_start": False},
            "upstream_schemas": {"enabled": False},
        },
    }
    merged = deep_merge(base, overrides)
    settings = load(None, {})
    return Settings.model_validate(deep_merge(settings.model_dump(mode="python"), merged))
