"""Inbound transactions under pressure: a bounded queue per origin, and a transaction whose
server is killed mid-way is finished from its stored PDUs after the restart."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.support.client import Client
from tests.support.fed_rooms import PeerRoom, peer_user
from tests.support.federation import ScriptedPeer
from tests.support.rooms import messages
from tests.support.server import RunningServer


@pytest.fixture
def room(peer: ScriptedPeer, fed_server: RunningServer, owner: Client) -> PeerRoom:
    room = PeerRoom.create(peer, fed_server, owner)
    user = peer_user(peer, "sender")
    join = room.join(user)
    assert room.send([join]) == {join.event_id: {}}
    return room


def text(room: PeerRoom, body: str) -> Any:
    sender = next(k[1] for k, _ in room.state.items() if k[0] == "m.room.member" and k[1].endswith(room.peer.server_name))
    return room.build(sender, "m.room.message", {"msgtype": "m.text", "body": body})


def held_gap(room: PeerRoom) -> tuple[list[Any], threading.Event, threading.Event]:
    """A chain whose last event needs /get_missing_events, which the peer holds until released."""
    chain = [text(room, f"m{i}") for i in range(3)]
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        release.wait(60)

    room.before_gme = hold
    return chain, entered, release


def timeline_ids(owner: Client, room_id: str) -> list[str]:
    return [e["event_id"] for e in reversed(messages(owner, room_id, dir="b", limit="50")["chunk"])]


def test_an_origin_may_queue_only_so_many_transactions(room: PeerRoom, owner: Client) -> None:
    chain, entered, release = held_gap(room)
    with ThreadPoolExecutor(max_workers=16) as pool:
        first = pool.submit(room.send_raw, {"pdus": [chain[-1].pdu]}, "held")
        assert entered.wait(30)
        queued = [pool.submit(room.send_raw, {"pdus": []}, f"queued-{i}") for i in range(14)]
        time.sleep(0.5)  # let them all arrive while the first is held
        release.set()
        answers = [f.result(timeout=60) for f in queued]
        assert first.result(timeout=60).json() == {"pdus": {chain[-1].event_id: {}}}
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) >= 10 and codes.count(429) >= 1, codes
    assert all(a.json()["errcode"] == "M_LIMIT_EXCEEDED" for a in answers if a.status_code == 429)
    assert timeline_ids(owner, room.room_id)[-3:] == [e.event_id for e in chain]


def test_a_transaction_cut_off_by_a_crash_is_finished_after_the_restart(
        room: PeerRoom, owner: Client, fed_server: RunningServer) -> None:
    chain, entered, release = held_gap(room)
    body = {"origin": room.peer.server_name, "origin_server_ts": 1, "pdus": [chain[-1].pdu]}

    def send_and_ignore() -> None:
        try:
            room.send_raw(body, "cut-off")
        except requests.RequestException:
            pass  # the server died under it

    sender = threading.Thread(target=send_and_ignore)
    sender.start()
    assert entered.wait(30)
    assert fed_server.process is not None
    fed_server.process.kill()  # no clean shutdown: as a crash
    fed_server.process.wait()
    fed_server.process = None
    release.set()
    room.before_gme = None
    sender.join(30)
    fed_server.start()
    deadline = time.monotonic() + 30
    while chain[-1].event_id not in timeline_ids(owner, room.room_id):
        assert time.monotonic() < deadline, "the staged transaction was never finished"
        time.sleep(0.2)
    assert timeline_ids(owner, room.room_id)[-3:] == [e.event_id for e in chain]
    # The origin's retry gets the answer the recovered transaction produced.
    retry = room.send_raw(body, "cut-off")
    assert retry.status_code == 200 and retry.json() == {"pdus": {chain[-1].event_id: {}}}
