"""The media tables on both engines: the remote-media cache (which only federation fills) and local media."""

from __future__ import annotations

import pytest_twisted

from storage.stores.local_media import LocalMediaStore, NewUpload
from storage.stores.remote_media import RemoteMedia, RemoteMediaCacheStore
from tests.e2ee.conftest import StoreHost

ALICE = "@alice:test.local"


def cached(origin: str, media_id: str, file_id: str, created: int, accessed: int | None,
           quarantined_by: str | None = None, sha256: str = "ab" * 32) -> RemoteMedia:
    return RemoteMedia(origin, media_id, file_id, "image/png", 10, "x.png", sha256, created, accessed, quarantined_by,
                       True)


@pytest_twisted.ensureDeferred
async def test_remote_cache_keeps_the_first_copy_and_purges_by_last_use(store_host: StoreHost) -> None:
    store = RemoteMediaCacheStore(store_host)
    assert await store.add_cached(cached("a.example", "one", "FileOneAAAAA", 1_000, None))
    assert not await store.add_cached(cached("a.example", "one", "FileOneBBBBB", 2_000, None))
    assert (await store.get_cached("a.example", "one")).file_id == "FileOneAAAAA"
    await store.add_cached(cached("b.example", "two", "FileTwoAAAAA", 1_000, 9_000))
    await store.add_cached(cached("b.example", "held", "FileHeldAAAA", 1_000, None, quarantined_by="@admin:x"))
    await store.set_last_access([("a.example", "one")], 3_000)
    stale = await store.unused_since(5_000)
    assert [(m.media_origin, m.media_id) for m in stale] == [("a.example", "one")]  # quarantined copies stay
    await store.delete_cached("a.example", "one")
    assert await store.get_cached("a.example", "one") is None
    assert await store.quarantine_keys([("b.example", "two"), ("b.example", "held"), ("c.example", "none")],
                                       "@admin:x") == 1
    assert await store.get_cached("x\x00", "y") is None


@pytest_twisted.ensureDeferred
async def test_quarantined_remote_hash_quarantines_a_local_upload(store_host: StoreHost) -> None:
    remote = RemoteMediaCacheStore(store_host)
    local = LocalMediaStore(store_host)
    await remote.add_cached(cached("a.example", "bad", "FileBadAAAAA", 1_000, None, "@admin:x", sha256="cd" * 32))
    assert await local.record_upload("LocalOneAAAA", ALICE, 2_000, NewUpload("image/png", 10, None, "cd" * 32),
                                     authenticated=True)
    assert (await local.get_media("LocalOneAAAA")).quarantined_by == "system"
    assert not await local.record_upload("LocalTwoAAAA", ALICE, 2_000, NewUpload("image/png", 10, None, "ef" * 32),
                                         authenticated=False)
    media = await local.get_media("LocalTwoAAAA")
    assert media.quarantined_by is None and media.authenticated is False


@pytest_twisted.ensureDeferred
async def test_a_fetched_copy_of_quarantined_bytes_is_quarantined_on_arrival(store_host: StoreHost) -> None:
    remote = RemoteMediaCacheStore(store_host)
    local = LocalMediaStore(store_host)
    await local.record_upload("LocalBadAAAA", ALICE, 1_000, NewUpload("image/png", 10, None, "a7" * 32), True)
    assert await local.set_quarantined("LocalBadAAAA", "@admin:x")
    assert await remote.add_cached(cached("b.example", "same", "FileSameAAAA", 2_000, None, None, sha256="a7" * 32))
    assert await remote.add_cached(cached("b.example", "other", "FileOtherAAA", 2_000, None, None, sha256="12" * 32))
    assert (await remote.get_cached("b.example", "same")).quarantined_by == "system"
    assert (await remote.get_cached("b.example", "other")).quarantined_by is None


@pytest_twisted.ensureDeferred
async def test_pending_ids_count_expire_and_complete_once(store_host: StoreHost) -> None:
    local = LocalMediaStore(store_host)
    await local.create_pending("PendingOneAA", ALICE, 1_000, True)
    await local.create_pending("PendingTwoAA", ALICE, 5_000, True)
    assert await local.count_pending(ALICE, 0) == (2, 1_000)
    assert await local.count_pending(ALICE, 2_000) == (1, 5_000)
    upload = NewUpload("text/plain", 3, "a.txt", "00" * 32)
    assert not await local.complete_pending("PendingTwoAA", "@mallory:test.local", upload)
    assert await local.complete_pending("PendingTwoAA", ALICE, upload)
    assert not await local.complete_pending("PendingTwoAA", ALICE, upload)
    assert await local.uploaded_bytes_since(ALICE, 0) == 3
    assert await local.delete_expired_pending(4_000) == ["PendingOneAA"]
    assert await local.get_media("PendingOneAA") is None
    assert (await local.get_media("PendingTwoAA")).media_length == 3
