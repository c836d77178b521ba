"""E2EE with a real Synapse (matrix-synapse from PyPI), issue 15: matrix-nio on one server and
mautrix on the other in an encrypted room, both ways round. Olm sessions need each side's
/user/keys/query and /user/keys/claim, room keys travel as m.direct_to_device EDUs, and each
client finds the other user's new device through m.device_list_update and device_lists.changed.
Plus the federation key endpoints each answers the other with."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.federation.e2ee_conversation import conversation
from tests.support.client import Client, q, register_user
from tests.support.e2ee import database_text, setup_device
from tests.support.rooms import V3, create_room, new_user
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer
from tests.support.sync import sync, sync_until

FED_SERVER_CONFIG = {"localhost_name": True, "ip_range_whitelist": ["127.0.0.1/32", "::1/128"]}


def test_nio_here_and_mautrix_on_synapse(synapse: SynapseServer, fed_server: RunningServer,
                                        tmp_path: Path) -> None:
    sent = asyncio.run(conversation(fed_server, synapse, tmp_path))
    stored = database_text(fed_server)
    for text in sent:
        assert text not in stored


def test_nio_on_synapse_and_mautrix_here(synapse: SynapseServer, fed_server: RunningServer,
                                        tmp_path: Path) -> None:
    sent = asyncio.run(conversation(synapse, fed_server, tmp_path))
    stored = database_text(fed_server)
    for text in sent:
        assert text not in stored


def test_keys_query_and_claim_both_ways(synapse: SynapseServer, fed_server: RunningServer) -> None:
    ours, theirs = new_user(fed_server.base_url), register_user(synapse.base_url)
    setup_device(ours, otk_count=3)
    setup_device(theirs, otk_count=3)
    room_id = create_room(ours, preset="public_chat")
    joined = theirs.post(f"{V3}/join/{q(room_id)}", {}, params={"server_name": fed_server.server_name})
    assert joined.status == 200, joined
    for asker, target in ((ours, theirs), (theirs, ours)):
        assert asker.user_id and target.user_id and target.device_id
        query = asker.post(f"{V3}/keys/query", {"device_keys": {target.user_id: []}})
        assert query.status == 200, query
        assert query.body["failures"] == {}
        assert set(query.body["device_keys"][target.user_id]) == {target.device_id}
        claim = asker.post(f"{V3}/keys/claim",
                           {"one_time_keys": {target.user_id: {target.device_id: "signed_curve25519"}}})
        assert claim.status == 200 and claim.body["failures"] == {}, claim
        (key_id,) = claim.body["one_time_keys"][target.user_id][target.device_id]
        assert key_id.startswith("signed_curve25519:")
    # A new Synapse device reaches our user's sync as a device-list change, and our query.
    assert ours.user_id and theirs.user_id
    since = sync(ours)["next_batch"]
    login = theirs.post(f"{V3}/login", {"type": "m.login.password", "password": "correct horse battery",
                                        "identifier": {"type": "m.id.user", "user": theirs.user_id}})
    assert login.status == 200, login
    device = Client(synapse.base_url, login.body["access_token"], theirs.user_id, login.body["device_id"])
    setup_device(device)
    sync_until(ours, since, lambda b: theirs.user_id in b.get("device_lists", {}).get("changed", []))
    for _ in range(20):
        query = ours.post(f"{V3}/keys/query", {"device_keys": {theirs.user_id: []}})
        if device.device_id in query.body["device_keys"][theirs.user_id]:
            break
        since = sync_until(ours, since, lambda b: theirs.user_id in b.get("device_lists", {}).get("changed", []))[1]
    assert set(query.body["device_keys"][theirs.user_id]) == {theirs.device_id, device.device_id}
