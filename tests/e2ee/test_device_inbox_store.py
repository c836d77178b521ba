"""DeviceInboxStore: the per-device limit, retention purge, and stream ids that never go back."""

from __future__ import annotations

import pytest
import pytest_twisted

from storage.stores.device_inbox import DeviceInboxStore, InboxFull, ToDeviceMessage
from storage.stores.federation_queue import FederationQueueStore, OutboxMessage
from tests.e2ee.conftest import StoreHost

ALICE, BOB = "@alice:test.local", "@bob:test.local"


def message(n: int) -> ToDeviceMessage:
    return ToDeviceMessage(BOB, "PHONE", ALICE, "m.test", {"n": n})


@pytest_twisted.ensureDeferred
async def test_inbox_limit_refuses_the_whole_request(store_host: StoreHost) -> None:
    store = DeviceInboxStore(store_host)
    assert await store.add_messages(ALICE, "DEV", "t1", [message(1), message(2)], [1, 2], 1000, inbox_limit=3)
    with pytest.raises(InboxFull) as full:
        await store.add_messages(ALICE, "DEV", "t2", [message(3), message(4)], [3, 4], 1000, inbox_limit=2)
    assert (full.value.user_id, full.value.device_id) == (BOB, "PHONE")
    # Nothing of the refused request was written, not even its txn id.
    assert [e["content"]["n"] for _, e in await store.get_messages(BOB, "PHONE", 0, 100, 100)] == [1, 2]
    assert await store.add_messages(ALICE, "DEV", "t2", [message(3)], [5], 1000, inbox_limit=3)
    assert not await store.add_messages(ALICE, "DEV", "t2", [message(3)], [6], 1000, inbox_limit=3)


@pytest_twisted.ensureDeferred
async def test_purge_drops_only_old_messages_and_keeps_the_high_water_mark(store_host: StoreHost) -> None:
    store = DeviceInboxStore(store_host)
    await store.add_messages(ALICE, "DEV", "old", [message(1)], [7], 1_000, inbox_limit=10)
    await store.add_messages(ALICE, "DEV", "new", [message(2)], [8], 5_000, inbox_limit=10)
    assert await store.purge_older_than(2_000) == 1
    assert [sid for sid, _ in await store.get_messages(BOB, "PHONE", 0, 100, 100)] == [8]
    assert await store.delete_acknowledged(BOB, "PHONE", 8) == 1
    await store.purge_older_than(10_000)
    # Everything is gone, yet a new generator continues after the last id ever used.
    generator = await DeviceInboxStore(StoreHost(store_host.db)).stream_writer()
    assert generator.get_current_token() == 8


@pytest_twisted.ensureDeferred
async def test_purge_applies_the_retention_to_the_remote_bound_queue_too(store_host: StoreHost) -> None:
    store = DeviceInboxStore(store_host)
    queue = FederationQueueStore(store_host)
    old = OutboxMessage("other.test", "m-old", {"message_id": "m-old"})
    new = OutboxMessage("other.test", "m-new", {"message_id": "m-new"})
    await store.add_messages(ALICE, "DEV", "o1", [], [], 1_000, 10, [old], [20])
    await store.add_messages(ALICE, "DEV", "o2", [], [], 5_000, 10, [new], [21])
    assert await store.purge_older_than(2_000) == 1
    assert [content["message_id"] for _, content in await queue.pending_to_device("other.test", 10)] == ["m-new"]
