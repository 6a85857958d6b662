"""Small bounded in-memory maps: client keys for the watcher, terminal answers for polls.

Keys live in memory only, never in the store: after a restart in pass-through
mode a job resumes when its client polls, or with the configured watcher key.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from proxy.stores.records import JobStatus

K = TypeVar("K")
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """An LRU map that forgets the oldest entries past ``size``."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def put(self, key: K, value: V) -> None:
        data = self._data
        if key in data:
            data[key] = value
            data.move_to_end(key)
        elif self._size > 0:
            data[key] = value  # a new key goes last
            if len(data) > self._size:  # one in, at most one out
                data.popitem(last=False)

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(slots=True)
class Known:
    """What this replica last wrote about one of its jobs.

    Client polls that see no change are not written one by one: they are counted
    here and written with the next change (or when the watcher deferral needs
    refreshing), so a client polling every 2 s costs the store a write only when
    something happens.
    """

    status: JobStatus
    estimate_micros: int | None
    deferred_until: float = 0.0
    unsaved_polls: int = 0
