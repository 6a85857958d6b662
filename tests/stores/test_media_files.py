"""Contract tests of the media file owners (File API per proxy key), run on every backend."""

from __future__ import annotations

from proxy.stores import Store
from tests.stores.helpers import T0


async def test_a_recorded_file_belongs_to_its_key_only(store: Store) -> None:
    """A file recorded for one key has that key as owner, and only that key finds it among ids."""
    await store.record_media_file("file-a1", "key-a", "studio-a", T0)
    await store.record_media_file("file-a2", "key-a", "studio-a", T0 + 1)
    await store.record_media_file("file-b1", "key-b", "studio-b", T0 + 2)
    assert await store.media_file_owner("file-a1") == "key-a"
    assert await store.media_file_owner("file-b1") == "key-b"
    assert await store.media_file_owner("file-unknown") is None
    ids = ["file-a1", "file-b1", "file-a2", "file-unknown", "file-a1"]
    assert await store.media_files_of("key-a", ids) == {"file-a1", "file-a2"}
    assert await store.media_files_of("key-b", ids) == {"file-b1"}
    assert await store.media_files_of("key-c", ids) == set()
    assert await store.media_files_of("key-a", []) == set()


async def test_a_second_record_keeps_the_first_owner(store: Store) -> None:
    """Recording a file id again (another key) neither fails nor moves the file."""
    await store.record_media_file("file-1", "key-a", "studio-a", T0)
    await store.record_media_file("file-1", "key-b", "studio-b", T0 + 1)
    assert await store.media_file_owner("file-1") == "key-a"


async def test_a_forgotten_file_has_no_owner(store: Store) -> None:
    """Forgetting drops the record once; the other files stay."""
    await store.record_media_file("file-1", "key-a", None, T0)
    await store.record_media_file("file-2", "key-a", None, T0)
    assert await store.forget_media_file("file-1") is True
    assert await store.forget_media_file("file-1") is False
    assert await store.media_file_owner("file-1") is None
    assert await store.media_files_of("key-a", ["file-1", "file-2"]) == {"file-2"}


async def test_many_ids_are_looked_up_in_chunks(store: Store) -> None:
    """More ids than one IN list holds are all looked up."""
    for n in range(0, 1200, 100):
        await store.record_media_file(f"file-{n}", "key-a", "studio-a", T0)
    found = await store.media_files_of("key-a", [f"file-{n}" for n in range(1200)])
    assert found == {f"file-{n}" for n in range(0, 1200, 100)}


async def test_purge_deletes_old_records_in_batches(store: Store) -> None:
    """Records uploaded before the cutoff go, at most ``limit`` per call; newer ones stay."""
    for n in range(3):
        await store.record_media_file(f"old-{n}", "key-a", None, T0 + n)
    await store.record_media_file("new", "key-a", None, T0 + 100)
    assert await store.purge_media_files(T0 + 50, 2) == 2
    assert await store.purge_media_files(T0 + 50, 2) == 1
    assert await store.purge_media_files(T0 + 50, 2) == 0
    assert await store.media_file_owner("new") == "key-a"
    assert await store.media_file_owner("old-2") is None
