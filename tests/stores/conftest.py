"""The store contract tests run on both engines (``store_url``, ``store``: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from proxy.stores import Store, open_store
from proxy.webhooks.document import render_delivery


@pytest.fixture
async def replica(store: Store, store_url: str) -> AsyncIterator[Store]:
    """A second store on the same database: another replica (PG) or connection (SQLite)."""
    opened = await open_store(store_url, render_delivery=render_delivery)
    try:
        yield opened
    finally:
        await opened.close()
