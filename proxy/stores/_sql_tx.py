"""The transaction interface every SQL store method writes against, whichever the engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Row = Mapping[str, Any]


class Tx(Protocol):
    """One connection inside (or, for reads, outside) a transaction."""

    async def fetch(self, sql: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: object) -> Row | None: ...

    async def execute(self, sql: str, *args: object) -> int:
        """Run a statement; the number of rows it changed."""
