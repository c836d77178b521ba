"""E2EE across servers against a scripted peer (issue 15): remote /keys/query and /keys/claim
go to the user's server (batched, failures only for servers that did not answer), the peer's
device-list updates are applied when they follow on and repaired by a /user/devices resync when
one is lost, and our own /user/ endpoints answer signed requests only."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.support.client import Client
from tests.support.e2ee import (
    ALGORITHMS,
    Ed25519,
    cross_signing_key,
    random_curve_key,
    setup_device,
)
from tests.support.fed_rooms import PeerRoom, peer_user
from tests.support.federation import ScriptedPeer
from tests.support.rooms import new_user
from tests.support.server import RunningServer
from tests.support.sync import sync, sync_until

V1 = "/_matrix/federation/v1"
KEYS_QUERY = "/_matrix/client/v3/keys/query"


class PeerKeys:
    """The peer's users' devices, served on /user/keys/query, /user/devices and /user/keys/claim."""

    def __init__(self, peer: ScriptedPeer) -> None:
        self.peer = peer
        self.devices: dict[str, dict[str, dict[str, Any]]] = {}
        self.stream_id: dict[str, int] = {}
        self.master: dict[str, dict[str, Any]] = {}
        self.devices_failures = 0  # answer /user/devices with 500 this many times first
        self.lock = threading.Lock()
        self.queries: list[dict[str, Any]] = []
        self.resyncs: list[str] = []
        routes = peer.http.routes
        routes[("POST", f"{V1}/user/keys/query")] = self._query
        routes[("POST", f"{V1}/user/keys/claim")] = self._claim
        routes[("GET", f"{V1}/user/devices/*")] = self._user_devices

    def add_device(self, user_id: str, device_id: str, stream_id: int) -> dict[str, Any]:
        identity = Ed25519()
        keys = identity.sign({"user_id": user_id, "device_id": device_id, "algorithms": ALGORITHMS,
                              "keys": {f"curve25519:{device_id}": random_curve_key(),
                                       f"ed25519:{device_id}": identity.public}},
                             user_id, f"ed25519:{device_id}")
        with self.lock:
            self.devices.setdefault(user_id, {})[device_id] = keys
            self.stream_id[user_id] = stream_id
        return keys

    @staticmethod
    def _body(handler: Any) -> Any:
        return json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))

    def _query(self, handler: Any) -> tuple[int, Any]:
        body = self._body(handler)
        with self.lock:
            self.queries.append(body)
            return 200, {"device_keys": {u: dict(self.devices.get(u, {})) for u in body["device_keys"]},
                         "master_keys": {u: self.master[u] for u in body["device_keys"] if u in self.master}}

    def _claim(self, handler: Any) -> tuple[int, Any]:
        body = self._body(handler)
        return 200, {"one_time_keys": {u: {d: {f"{alg}:AAAAHQ": {"key": "claimed-" + d}} for d, alg in devs.items()}
                                       for u, devs in body["one_time_keys"].items()}}

    def _user_devices(self, handler: Any) -> tuple[int, Any]:
        user_id = unquote(handler.path.split("?")[0].rsplit("/", 1)[1])
        with self.lock:
            self.resyncs.append(user_id)
            if self.devices_failures > 0:
                self.devices_failures -= 1
                return 500, {"errcode": "M_UNKNOWN", "error": "not now"}
            devices = [{"device_id": d, "keys": k} for d, k in self.devices.get(user_id, {}).items()]
            body = {"user_id": user_id, "stream_id": self.stream_id.get(user_id, 0), "devices": devices}
            if user_id in self.master:
                body["master_key"] = self.master[user_id]
            return 200, body


@pytest.fixture
def keys(peer: ScriptedPeer) -> PeerKeys:
    return PeerKeys(peer)


def joined(room: PeerRoom) -> str:
    user = peer_user(room.peer)
    event = room.join(user)
    assert room.send([event]) == {event.event_id: {}}
    return user


def query(client: Client, *user_ids: str, **extra: Any) -> dict[str, Any]:
    response = client.post(KEYS_QUERY, {"device_keys": {u: [] for u in user_ids}, **extra})
    assert response.status == 200, response
    return response.body


def device_update(user_id: str, device_id: str, stream_id: int, prev: list[int],
                  keys: dict[str, Any] | None = None, deleted: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"user_id": user_id, "device_id": device_id, "stream_id": stream_id,
                               "prev_id": prev, "deleted": deleted}
    if keys is not None:
        content["keys"] = keys
    return {"edu_type": "m.device_list_update", "content": content}


def wait_for_devices(client: Client, user_id: str, expected: set[str]) -> dict[str, Any]:
    """Sync until the user shows up in device_lists.changed with the expected devices."""
    since = sync(client)["next_batch"]
    for _ in range(40):
        body = query(client, user_id)
        if set(body["device_keys"].get(user_id, {})) == expected:
            return body
        _, since = sync_until(client, since, lambda b: user_id in b.get("device_lists", {}).get("changed", []))
    raise AssertionError(f"never saw {expected} for {user_id}: {query(client, user_id)}")


def test_remote_query_is_batched_per_server_and_cached_while_sharing_a_room(
        room: PeerRoom, keys: PeerKeys, owner: Client) -> None:
    alice, bob = joined(room), joined(room)
    keys.add_device(alice, "A1", 1)
    keys.add_device(bob, "B1", 1)
    master = Ed25519()
    keys.master[alice] = cross_signing_key(alice, "master", master)
    stranger = peer_user(room.peer)  # not in any room with us
    keys.add_device(stranger, "S1", 1)
    body = query(owner, alice, bob, stranger)
    assert body["failures"] == {}
    assert set(body["device_keys"][alice]) == {"A1"} and set(body["device_keys"][bob]) == {"B1"}
    assert body["device_keys"][stranger]["S1"]["keys"] == keys.devices[stranger]["S1"]["keys"]
    assert body["master_keys"][alice]["keys"] == keys.master[alice]["keys"]
    assert len(keys.queries) == 1  # one request for the three users of that server
    assert set(keys.queries[0]["device_keys"]) == {alice, bob, stranger}
    # The two who share a room with us are cached now; the stranger is asked for again.
    again = query(owner, alice, bob, stranger)
    assert again["device_keys"] == body["device_keys"]
    assert [set(q["device_keys"]) for q in keys.queries[1:]] == [{stranger}]


def test_failures_name_only_the_servers_that_did_not_answer(
        fednet: Any, room: PeerRoom, keys: PeerKeys, owner: Client) -> None:
    alice = joined(room)
    keys.add_device(alice, "A1", 1)
    silent = ScriptedPeer(fednet)
    release = threading.Event()

    def hang(_handler: Any) -> tuple[int, Any]:
        release.wait(30)
        return 200, {"device_keys": {}}

    silent.http.routes[("POST", f"{V1}/user/keys/query")] = hang
    try:
        body = query(owner, alice, f"@x:{silent.server_name}", "@y:nowhere.invalid", timeout=1500)
    finally:
        release.set()
        silent.stop()
    assert set(body["failures"]) == {silent.server_name, "nowhere.invalid"}
    assert set(body["device_keys"][alice]) == {"A1"}
    bad = owner.post(KEYS_QUERY, {"device_keys": {alice: []}, "timeout": "soon"})
    assert bad.status == 400 and bad.body["errcode"] == "M_INVALID_PARAM"


def test_remote_claim_goes_to_the_users_server(room: PeerRoom, keys: PeerKeys, owner: Client) -> None:
    alice = joined(room)
    response = owner.post("/_matrix/client/v3/keys/claim", {
        "one_time_keys": {alice: {"A1": "signed_curve25519"}, "@z:nowhere.invalid": {"Z": "signed_curve25519"}},
        "timeout": 2000})
    assert response.status == 200, response
    assert response.body["one_time_keys"] == {alice: {"A1": {"signed_curve25519:AAAAHQ": {"key": "claimed-A1"}}}}
    assert set(response.body["failures"]) == {"nowhere.invalid"}


def test_updates_that_follow_on_apply_and_a_lost_one_is_repaired_by_a_resync(
        room: PeerRoom, keys: PeerKeys, owner: Client) -> None:
    alice = joined(room)
    keys.add_device(alice, "A1", 1)
    assert set(query(owner, alice)["device_keys"][alice]) == {"A1"}  # cached, but with no stream position
    # The first update after a /user/keys/query answer resyncs (the position is unknown).
    d2 = keys.add_device(alice, "A2", 2)
    room.send([], [device_update(alice, "A2", 2, [1], d2)])
    wait_for_devices(owner, alice, {"A1", "A2"})
    assert keys.resyncs == [alice]
    # One that follows on from stream 2 is applied as it is.
    d3 = keys.add_device(alice, "A3", 3)
    room.send([], [device_update(alice, "A3", 3, [2], d3)])
    wait_for_devices(owner, alice, {"A1", "A2", "A3"})
    room.send([], [device_update(alice, "A1", 4, [3], deleted=True)])
    with keys.lock:
        del keys.devices[alice]["A1"]
        keys.stream_id[alice] = 4
    wait_for_devices(owner, alice, {"A2", "A3"})
    assert keys.resyncs == [alice]
    # Stream 5 is lost on the way; 6 names 5 as its predecessor, so we resync (and the first
    # attempt fails: it is retried with backoff).
    keys.add_device(alice, "A5", 5)
    d6 = keys.add_device(alice, "A6", 6)
    keys.devices_failures = 1
    queries_before = len(keys.queries)
    room.send([], [device_update(alice, "A6", 6, [5], d6)])
    body = wait_for_devices(owner, alice, {"A2", "A3", "A5", "A6"})
    assert body["device_keys"][alice]["A5"]["keys"] == keys.devices[alice]["A5"]["keys"]
    # (While the cache is stale, a query asks the peer instead of answering from it.)
    since = sync(owner)["next_batch"]
    for _ in range(20):
        if len(keys.resyncs) == 3:
            break
        _, since = sync_until(owner, since, lambda b: True)
    assert keys.resyncs == [alice] * 3  # the failed attempt was retried
    # Resynced: the cache answers again, without asking the peer.
    queries_now = len(keys.queries)
    assert queries_now <= queries_before + 1
    assert set(query(owner, alice)["device_keys"][alice]) == {"A2", "A3", "A5", "A6"}
    assert len(keys.queries) == queries_now
    # A duplicate of an update already covered changes nothing.
    room.send([], [device_update(alice, "A6", 6, [5], d6)])
    assert set(query(owner, alice)["device_keys"][alice]) == {"A2", "A3", "A5", "A6"}


def test_updates_for_users_we_share_no_room_with_are_ignored(
        room: PeerRoom, keys: PeerKeys, owner: Client) -> None:
    joined(room)
    stranger = peer_user(room.peer)
    keys.add_device(stranger, "S1", 1)
    room.send([], [device_update(stranger, "S1", 1, [], keys.devices[stranger]["S1"]),
                   device_update("@spoof:elsewhere.test", "X", 1, [])])
    query(owner, stranger)
    assert keys.resyncs == []
    assert len(keys.queries) == 1  # not cached: asked again next time
    query(owner, stranger)
    assert len(keys.queries) == 2


def test_signing_key_update_replaces_the_cached_master_key(
        room: PeerRoom, keys: PeerKeys, owner: Client) -> None:
    alice = joined(room)
    keys.add_device(alice, "A1", 1)
    keys.master[alice] = cross_signing_key(alice, "master", Ed25519())
    room.send([], [device_update(alice, "A1", 1, [], keys.devices[alice]["A1"])])  # not cached yet: re-query
    wait_for_devices(owner, alice, {"A1"})
    new_master = cross_signing_key(alice, "master", Ed25519())
    since = sync(owner)["next_batch"]
    room.send([], [{"edu_type": "m.signing_key_update", "content": {"user_id": alice, "master_key": new_master}}])
    sync_until(owner, since, lambda b: alice in b.get("device_lists", {}).get("changed", []))
    assert query(owner, alice)["master_keys"][alice]["keys"] == new_master["keys"]


# -- our own /user/ endpoints ---------------------------------------------------------------


def test_user_endpoints_serve_local_keys_to_signed_requests(
        peer: ScriptedPeer, fed_server: RunningServer) -> None:
    local = new_user(fed_server.base_url)
    setup_device(local, otk_count=2)
    master, self_signing = Ed25519(), Ed25519()
    upload = local.post("/_matrix/client/v3/keys/device_signing/upload", {
        "master_key": cross_signing_key(local.user_id, "master", master),
        "self_signing_key": cross_signing_key(local.user_id, "self_signing", self_signing, master),
        "user_signing_key": cross_signing_key(local.user_id, "user_signing", Ed25519(), master)})
    assert upload.status == 200, upload
    user = local.user_id
    assert user is not None and local.device_id is not None

    answer = peer.request("POST", fed_server, f"{V1}/user/keys/query", {"device_keys": {user: []}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["device_keys"][user]) == {local.device_id}
    assert "device_display_name" not in body["device_keys"][user][local.device_id].get("unsigned", {})
    assert body["master_keys"][user]["keys"] == {f"ed25519:{master.public}": master.public}
    assert user in body["self_signing_keys"] and "user_signing_keys" not in body

    devices = peer.request("GET", fed_server, f"{V1}/user/devices/{quote(user)}")
    assert devices.status_code == 200, devices.text
    listed = devices.json()
    assert listed["user_id"] == user and isinstance(listed["stream_id"], int) and listed["stream_id"] > 0
    assert [d["device_id"] for d in listed["devices"]] == [local.device_id]
    assert listed["devices"][0]["keys"]["keys"] == body["device_keys"][user][local.device_id]["keys"]
    assert "master_key" in listed and "self_signing_key" in listed

    claim = peer.request("POST", fed_server, f"{V1}/user/keys/claim",
                         {"one_time_keys": {user: {local.device_id: "signed_curve25519"}}})
    assert claim.status_code == 200, claim.text
    assert len(claim.json()["one_time_keys"][user][local.device_id]) == 1


def test_user_endpoints_refuse_bad_requests(peer: ScriptedPeer, fed_server: RunningServer) -> None:
    local = new_user(fed_server.base_url)
    user = local.user_id
    assert user is not None
    unsigned = peer.request("POST", fed_server, f"{V1}/user/keys/query", {"device_keys": {}},
                            authorization=False)
    assert unsigned.status_code == 401
    for path, body in ((f"{V1}/user/keys/query", {"device_keys": []}),
                       (f"{V1}/user/keys/query", {"device_keys": {user: "all"}}),
                       (f"{V1}/user/keys/query", [1]),
                       (f"{V1}/user/keys/claim", {"one_time_keys": {user: {"D": 5}}}),
                       (f"{V1}/user/keys/claim", {})):
        response = peer.request("POST", fed_server, path, body)
        assert response.status_code == 400, (path, body, response.text)
    assert peer.request("GET", fed_server, f"{V1}/user/devices/{quote('@x:elsewhere.test')}").status_code == 400
    assert peer.request("GET", fed_server, f"{V1}/user/devices/not-a-user").status_code == 400
    missing = peer.request("GET", fed_server, f"{V1}/user/devices/{quote('@nobody:' + fed_server.server_name)}")
    assert missing.status_code == 404


def test_leaving_the_last_shared_room_drops_the_cache(room: PeerRoom, keys: PeerKeys, owner: Client) -> None:
    alice = joined(room)
    keys.add_device(alice, "A1", 1)
    query(owner, alice)
    query(owner, alice)
    assert len(keys.queries) == 1  # cached while we share the room
    leave = room.build(alice, "m.room.member", {"membership": "leave"}, alice)
    assert room.send([leave]) == {leave.event_id: {}}
    keys.add_device(alice, "A2", 2)  # a change nobody tells us of: we share no room now
    assert set(query(owner, alice)["device_keys"][alice]) == {"A1", "A2"}  # not served from the cache
    assert len(keys.queries) == 2
    keys.add_device(alice, "A3", 3)
    rejoin = room.join(alice)
    assert room.send([rejoin]) == {rejoin.event_id: {}}
    # The first query after the new join asks the peer again instead of serving an old list.
    assert set(query(owner, alice)["device_keys"][alice]) == {"A1", "A2", "A3"}
    assert len(keys.queries) == 3
