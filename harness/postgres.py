"""Fresh PostgreSQL databases on the shared server, created and dropped around their use."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str, admin_url: str = PG_ADMIN_URL) -> str:
    """The URL of database ``name`` on the server ``admin_url`` points at."""
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def create_database(name: str, admin_url: str = PG_ADMIN_URL) -> str:
    """Create database ``name`` (dropping one left by an earlier run); its URL."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return database_url(name, admin_url)


async def drop_database(name: str, admin_url: str = PG_ADMIN_URL) -> None:
    """Drop database ``name``, closing whatever connections are still open on it."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_postgres(prefix: str = "test_e2e") -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database (``<prefix>_<random>``), dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    url = await create_database(name)
    try:
        yield url
    finally:
        await drop_database(name)
