"""Fixtures for every test folder: a fresh database on each engine, and a store on it; the
hooks that fail a skip under CI (tests/ci_skips.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.postgres import fresh_postgres
from proxy.stores import Store, open_store
from proxy.webhooks.document import render_delivery
from tests.ci_skips import pytest_collectreport, pytest_runtest_makereport  # noqa: F401

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty, not yet migrated database for one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    async with fresh_postgres("test_store") as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An opened, migrated store, rendering completion webhooks as the proxy does."""
    opened = await open_store(store_url, render_delivery=render_delivery)
    try:
        yield opened
    finally:
        await opened.close()
