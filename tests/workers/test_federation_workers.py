"""Federation, media and background jobs split off the main process (docs/workers.md), against
a real Synapse: messages both ways through the federation reader and sender workers, nothing
lost when the sender restarts (or is killed), media served by the media worker only, and the
retention purge run by the background-jobs worker only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

from tests.support.client import Client, q, register_user
from tests.support.fed_workers import (
    BACKGROUND,
    MEDIA,
    READER,
    SENDER,
    metric,
    see,
    sent_transactions,
    start_split_server,
)
from tests.support.federation import FederationNet
from tests.support.federation_rooms import sync_token, sync_until, typing_user_ids
from tests.support.rooms import V3, create_room, new_user, put_state, send_message
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer
from tests.support.workers import ProcessSet, serve

RETENTION = {"retention": {
    "enabled": True,
    "allowed_lifetime_min": "1s",
    "allowed_lifetime_max": "1d",
    "purge_jobs": [{"longest_max_lifetime": "1h", "interval": "1s"}],
}}


@pytest.fixture(scope="module")
def split(net: FederationNet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessSet]:
    processes = start_split_server(tmp_path_factory.mktemp("split"), net, **RETENTION)
    yield from serve(processes)


@pytest.fixture(scope="module")
def synapse(net: FederationNet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    server = SynapseServer.start(tmp_path_factory.mktemp("synapse"), net.ca)
    try:
        yield server
    finally:
        server.stop()


def served(base_url: str, method: str, route: str) -> float:
    return metric(base_url, f'vignette_http_requests_total{{method="{method}",route="{route}"')


def wait_for(predicate: Any, what: str, attempts: int = 300) -> None:
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def shared_room(split: ProcessSet, synapse: SynapseServer) -> tuple[Client, Client, str]:
    alice = new_user(split.main.base_url)
    room_id = create_room(alice, preset="public_chat")
    bob = register_user(synapse.base_url)
    response = bob.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": split.server_name})
    assert response.status == 200, (response, split.workers[READER].output()[-3000:])
    return alice, bob, room_id


def test_messages_both_ways_through_the_split_federation_workers(split: ProcessSet,
                                                                 synapse: SynapseServer) -> None:
    alice, bob, room_id = shared_room(split, synapse)
    for writer, reader in ((alice, bob), (bob, alice), (alice, bob)):
        text = f"hello from {writer.user_id} {time.monotonic()}"
        since = sync_token(reader)
        send_message(writer, room_id, text)
        see(reader, room_id, [text], since)
    # Every transaction went out from the sender worker; the main process sent none.
    assert sent_transactions(split.workers[SENDER].base_url) > 0
    assert sent_transactions(split.main.base_url) == 0
    # The reader answered the join's read itself, and passed the writes (/send, send_join) on.
    reader_url = split.workers[READER].base_url
    assert served(reader_url, "GET", "/_matrix/federation/v1/make_join/{room_id}/{user_id}") > 0
    assert served(reader_url, "PUT", "forwarded") > 0


def test_messages_both_ways_with_a_vignette_peer(split: ProcessSet, vignette_peer: RunningServer) -> None:
    carol = new_user(vignette_peer.base_url)
    room_id = create_room(carol, preset="public_chat")
    alice = new_user(split.main.base_url)
    joined = alice.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": vignette_peer.server_name})
    assert joined.status == 200, (joined, split.main.output()[-3000:])
    for writer, reader in ((alice, carol), (carol, alice)):
        text = f"vignette pair {writer.user_id}"
        since = sync_token(reader)
        send_message(writer, room_id, text)
        see(reader, room_id, [text], since)


def test_typing_and_to_device_go_out_through_the_sender_worker(split: ProcessSet,
                                                               synapse: SynapseServer) -> None:
    alice, bob, room_id = shared_room(split, synapse)
    since = sync_token(bob)
    typing = alice.put(f"{V3}/rooms/{q(room_id)}/typing/{q(str(alice.user_id))}", {"typing": True, "timeout": 30000})
    assert typing.status == 200, typing
    sync_until(bob, lambda body: str(alice.user_id) in typing_user_ids(body, room_id), since)
    since = sync_token(bob)
    message = {"messages": {str(bob.user_id): {"*": {"hello": "device"}}}}
    sent = alice.put(f"{V3}/sendToDevice/m.test.split/{time.monotonic_ns()}", message)
    assert sent.status == 200, sent

    def got_it(body: dict[str, Any]) -> bool:
        events = body.get("to_device", {}).get("events", [])
        return any(e["type"] == "m.test.split" and e["content"] == {"hello": "device"} for e in events)

    sync_until(bob, got_it, since)


@pytest.mark.parametrize("how", ["restart", "kill -9"])
def test_nothing_is_lost_when_the_sender_restarts(split: ProcessSet, synapse: SynapseServer, how: str) -> None:
    alice, bob, room_id = shared_room(split, synapse)
    sender = split.workers[SENDER]
    since = sync_token(bob)
    texts = [f"{how} {i}" for i in range(12)]
    for i, text in enumerate(texts):
        if i == 4:
            sender.stop() if how == "restart" else sender.kill()
        if i == 8:
            sender.start()
        send_message(alice, room_id, text)
    see(bob, room_id, texts, since)


def test_media_is_served_by_the_media_worker_only(split: ProcessSet) -> None:
    alice = new_user(split.main.base_url)
    media = Client(split.workers[MEDIA].base_url, alice.access_token, alice.user_id)
    upload = requests.post(split.workers[MEDIA].base_url + "/_matrix/media/v3/upload",
                           params={"filename": "a.txt"}, data=b"split media",
                           headers={"Authorization": f"Bearer {alice.access_token}",
                                    "Content-Type": "text/plain"}, timeout=30)
    assert upload.status_code == 200, upload.text
    media_id = upload.json()["content_uri"].split("/")[-1]
    path = f"/_matrix/client/v1/media/download/{q(split.server_name)}/{media_id}"
    download = requests.get(media.base_url + path, headers={"Authorization": f"Bearer {alice.access_token}"},
                            timeout=30)
    assert download.status_code == 200 and download.content == b"split media"
    # The main process (enable_media_repo: false) serves none of it.
    on_main = requests.get(split.main.base_url + path, headers={"Authorization": f"Bearer {alice.access_token}"},
                           timeout=30)
    assert on_main.status_code == 404
    assert on_main.json()["errcode"] == "M_UNRECOGNIZED"


def event_exists(split: ProcessSet, event_id: str) -> bool:
    args = {k: v for k, v in split.database["args"].items() if not k.startswith("cp_")}
    connection = psycopg2.connect(**args)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM events WHERE event_id = %s", (event_id,))
            return cursor.fetchone() is not None
    finally:
        connection.close()


def test_the_retention_purge_runs_on_the_background_worker_only(split: ProcessSet) -> None:
    alice = new_user(split.main.base_url)
    room_id = create_room(alice)
    assert put_state(alice, room_id, "m.room.retention", {"max_lifetime": 2000}).status == 200
    old = send_message(alice, room_id, "old")
    send_message(alice, room_id, "latest")
    wait_for(lambda: not event_exists(split, old), "the old event to be purged")
    assert "purge job" in Path(split.workers[BACKGROUND].directory / "homeserver.log").read_text()
    assert "purge job" not in Path(split.main.directory / "homeserver.log").read_text()
