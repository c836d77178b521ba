"""Federation for rooms that event persisters write (docs/workers.md): a set with two
persisters and a split federation sender (with a federation reader in front), and a room on
each persister shared with a single-process Vignette peer. The sender follows the events
stream from both writers and reads the events back from the database, so the peer receives
the messages of both rooms, and answers come back in both."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import yaml

from homeserver.replication.persisters import owner_of
from tests.support.client import Client, q
from tests.support.fed_workers import SENDER, see, sent_transactions, start_split_server
from tests.support.federation import FederationNet
from tests.support.federation_rooms import sync_token
from tests.support.rooms import V3, create_room, new_user, send_message
from tests.support.server import RunningServer, free_port
from tests.support.workers import ProcessSet, serve

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PERSISTERS = ["persister1", "persister2"]


@pytest.fixture(scope="module", params=[SENDER, "main"])
def split(net: FederationNet, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[ProcessSet]:
    """The set, with the federation sender split off, or on main (which persists no events)."""
    processes = start_split_server(
        tmp_path_factory.mktemp("split_persisters"), net, request.param,
        persister_ports={name: free_port() for name in PERSISTERS},
        stream_writers={"events": PERSISTERS},
        worker_replication_secret=secrets.token_hex(16),
    )
    yield from serve(processes)


def room_on(alice: Client, persister: str) -> str:
    """A public room of ``alice``'s that ``persister`` writes."""
    room_id = create_room(alice, preset="public_chat")
    while owner_of(room_id, PERSISTERS) != persister:
        room_id = create_room(alice, preset="public_chat")
    return room_id


def test_the_peer_receives_events_from_rooms_on_both_persisters(split: ProcessSet, vignette_peer: RunningServer) -> None:
    alice = new_user(split.main.base_url)
    carol = new_user(vignette_peer.base_url)
    rooms = [room_on(alice, persister) for persister in PERSISTERS]
    for room_id in rooms:
        joined = carol.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": split.server_name})
        assert joined.status == 200, (joined, split.main.output()[-3000:])
    for round_ in range(2):
        for room_id in rooms:
            since = sync_token(carol)
            texts = [f"{room_id} {round_} {n}" for n in range(3)]
            for text in texts:
                send_message(alice, room_id, text)
            see(carol, room_id, texts, since)
            # And back: the peer's answer reaches alice through the reader and the room's persister.
            since = sync_token(alice)
            answer = f"answer {room_id} {round_}"
            send_message(carol, room_id, answer)
            see(alice, room_id, [answer], since)
    sender_url, other_url = split.workers[SENDER].base_url, split.main.base_url
    if yaml.safe_load(split.main.config_path.read_text())["federation_sender_instances"] == ["main"]:
        sender_url, other_url = other_url, sender_url
    assert sent_transactions(sender_url) > 0
    assert sent_transactions(other_url) == 0
