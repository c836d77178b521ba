"""Vignette and a real Synapse (from PyPI) on loopback: each validates the other's keys and
accepts the other's signed requests, over TLS checked against the test CA on both sides."""

from __future__ import annotations

from urllib.parse import quote

import nacl.signing
import pytest
import requests

from homeserver.events.signing import verify_json_signature
from homeserver.events.unpadded_base64 import decode_base64, encode_base64
from homeserver.signing_key import read_signing_keys
from tests.support.client import Client, register_user
from tests.support.federation import FederationNet, federation_url
from tests.support.rooms import new_user
from tests.support.server import RunningServer
from tests.support.synapse_server import SynapseServer

FED_SERVER_CONFIG = {"localhost_name": True, "ip_range_whitelist": ["127.0.0.1/32", "::1/128"]}


@pytest.fixture(scope="module")
def vignette(fed_server: RunningServer) -> RunningServer:
    """Reachable from Synapse as ``localhost:<port>`` (Synapse can use no DNS server of ours)."""
    return fed_server


def our_keys(server: RunningServer) -> dict[str, nacl.signing.VerifyKey]:
    return {entry.key_id: entry.key.verify_key for entry in read_signing_keys(server.config["signing_key_path"])}


def synapse_verify_keys(synapse: SynapseServer) -> dict[str, nacl.signing.VerifyKey]:
    return {key_id: nacl.signing.VerifyKey(decode_base64(key)) for key_id, key in synapse.verify_keys().items()}


def test_synapse_notary_validates_our_keys(synapse: SynapseServer, vignette: RunningServer,
                                           fednet: FederationNet) -> None:
    # Synapse's notary fetches on a cache miss only for named key IDs, so name ours.
    key_id = next(iter(our_keys(vignette)))
    query = {"server_keys": {vignette.server_name: {key_id: {"minimum_valid_until_ts": 0}}}}
    response = requests.post(f"{synapse.federation_url}/_matrix/key/v2/query", json=query,
                             verify=str(fednet.ca.ca_path), timeout=60)
    assert response.status_code == 200, response.text
    (document,) = response.json()["server_keys"]
    assert document["server_name"] == vignette.server_name
    assert {key_id: entry["key"] for key_id, entry in document["verify_keys"].items()} == {
        key_id: encode_base64(bytes(key)) for key_id, key in our_keys(vignette).items()}
    verify_json_signature(document, vignette.server_name, our_keys(vignette))
    verify_json_signature(document, synapse.server_name, synapse_verify_keys(synapse))


def test_we_fetch_and_countersign_synapse_keys(synapse: SynapseServer, vignette: RunningServer,
                                               fednet: FederationNet) -> None:
    response = requests.get(f"{federation_url(vignette)}/_matrix/key/v2/query/{synapse.server_name}",
                            verify=str(fednet.ca.ca_path), timeout=60)
    assert response.status_code == 200
    (document,) = response.json()["server_keys"]
    assert {key_id: entry["key"] for key_id, entry in document["verify_keys"].items()} == synapse.verify_keys()
    verify_json_signature(document, synapse.server_name, synapse_verify_keys(synapse))
    verify_json_signature(document, vignette.server_name, our_keys(vignette))


def set_displayname(client: Client, name: str) -> None:
    response = client.put(f"/_matrix/client/v3/profile/{quote(client.user_id, safe='')}/displayname",
                          {"displayname": name})
    assert response.status == 200, response


def test_synapse_accepts_our_signed_requests(synapse: SynapseServer, vignette: RunningServer) -> None:
    """Our user asks for a Synapse user's profile: a request we sign, that Synapse must verify."""
    bob = register_user(synapse.base_url)
    set_displayname(bob, "Bob on Synapse")
    alice = new_user(vignette.base_url)
    response = alice.get(f"/_matrix/client/v3/profile/{quote(bob.user_id, safe='')}")
    assert response.status == 200, (response, synapse.output()[-2000:])
    assert response.body["displayname"] == "Bob on Synapse"


def test_we_accept_synapse_signed_requests(synapse: SynapseServer, vignette: RunningServer) -> None:
    """A Synapse user asks for our user's profile: Synapse signs, we fetch its key and verify."""
    alice = new_user(vignette.base_url)
    set_displayname(alice, "Alice on Vignette")
    bob = register_user(synapse.base_url)
    response = bob.get(f"/_matrix/client/v3/profile/{quote(alice.user_id, safe='')}")
    assert response.status == 200, (response, vignette.output()[-2000:])
    assert response.body["displayname"] == "Alice on Vignette"
    missing = bob.get(f"/_matrix/client/v3/profile/{quote('@nobody:' + vignette.server_name, safe='')}")
    assert missing.status == 404
