"""Vignette servers federating with each other on loopback, over HTTPS with verified certificates:
fetching each other's keys, signed requests both ways, a notary (trusted_key_servers) for a server
that cannot be reached directly, and federation_domain_whitelist."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import attrs
import nacl.signing
import pytest
import requests

from homeserver.events.signing import verify_json_signature
from homeserver.events.unpadded_base64 import encode_base64
from homeserver.signing_key import read_signing_keys
from tests.support.client import Client
from tests.support.databases import ENGINES, drop_database
from tests.support.federation import FederationNet, ScriptedPeer, federation_url, unique_label
from tests.support.rooms import new_user
from tests.support.server import RunningServer

LAN = "127.1.0.0/16"  # where the "hidden" peer lives: reachable by B, not by the notary's clients


@attrs.define
class Servers:
    a: RunningServer
    b: RunningServer
    via_notary: RunningServer  # trusts B as a notary and cannot reach LAN itself
    bad_notary: RunningServer  # trusts B, but pins a key B does not have
    fenced: RunningServer  # federation_domain_whitelist: [A]


def verify_keys_of(server: RunningServer) -> dict[str, nacl.signing.VerifyKey]:
    return {entry.key_id: entry.key.verify_key for entry in read_signing_keys(server.config["signing_key_path"])}


@pytest.fixture(scope="module", params=ENGINES)
def servers(request: pytest.FixtureRequest, fednet: FederationNet,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started: list[tuple[RunningServer, dict]] = []

    def start(label: str, **overrides: object) -> RunningServer:
        directory: Path = tmp_path_factory.mktemp(f"{label}-{request.param}")
        server, database = fednet.start_server(directory, request.param, unique_label(label), **overrides)
        started.append((server, database))
        return server

    try:
        a = start("a")
        b = start("b", ip_range_whitelist=["127.0.0.1/32", LAN])
        b_keys = {key_id: encode_base64(bytes(key)) for key_id, key in verify_keys_of(b).items()}
        via_notary = start("c", trusted_key_servers=[{"server_name": b.server_name, "verify_keys": b_keys}])
        wrong_key = encode_base64(bytes(nacl.signing.SigningKey.generate().verify_key))
        bad_notary = start("d", trusted_key_servers=[
            {"server_name": b.server_name, "verify_keys": {next(iter(b_keys)): wrong_key}}])
        fenced = start("e", federation_domain_whitelist=[a.server_name])
        yield Servers(a, b, via_notary, bad_notary, fenced)
    finally:
        for server, database in started:
            server.stop()
            drop_database(database)


def notary_query(notary: RunningServer, fednet: FederationNet, server_name: str) -> list[dict]:
    response = requests.get(f"{federation_url(notary)}/_matrix/key/v2/query/{server_name}",
                            verify=str(fednet.ca.ca_path), timeout=60)
    assert response.status_code == 200
    return response.json()["server_keys"]


def test_each_fetches_the_others_keys(servers: Servers, fednet: FederationNet) -> None:
    for asker, owner in ((servers.a, servers.b), (servers.b, servers.a)):
        (document,) = notary_query(asker, fednet, owner.server_name)
        verify_json_signature(document, owner.server_name, verify_keys_of(owner))
        verify_json_signature(document, asker.server_name, verify_keys_of(asker))
        assert set(document["verify_keys"]) == set(verify_keys_of(owner))


def test_remote_profile_over_signed_requests(servers: Servers) -> None:
    """A's client asks for a B user's profile: A signs a query to B, B fetches A's key and checks it."""
    bob = new_user(servers.b.base_url)
    path = f"/_matrix/client/v3/profile/{quote(bob.user_id, safe='')}"
    assert bob.put(path + "/displayname", {"displayname": "Bob of B"}).status == 200
    alice = new_user(servers.a.base_url)
    response = alice.get(path)
    assert response.status == 200, response
    assert response.body["displayname"] == "Bob of B"
    assert alice.get(path + "/displayname").body == {"displayname": "Bob of B"}
    missing = alice.get(f"/_matrix/client/v3/profile/{quote('@nobody:' + servers.b.server_name, safe='')}")
    assert (missing.status, missing.errcode) == (404, "M_NOT_FOUND")
    unreachable = alice.get(f"/_matrix/client/v3/profile/{quote('@x:nowhere.invalid', safe='')}")
    assert (unreachable.status, unreachable.errcode) == (502, "M_UNKNOWN")


def _lan_peer(fednet: FederationNet) -> ScriptedPeer:
    address = f"127.1.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
    return ScriptedPeer(fednet, unique_label("lan"), address=address)


def profile_uri(client: Client) -> str:
    return f"/_matrix/federation/v1/query/profile?user_id={quote(client.user_id, safe='')}"


def test_key_from_a_trusted_notary(servers: Servers, fednet: FederationNet) -> None:
    """The peer is unreachable for C (blocked address); C gets its key from notary B and accepts it."""
    peer = _lan_peer(fednet)
    try:
        carol = new_user(servers.via_notary.base_url)
        response = peer.request("GET", servers.via_notary, profile_uri(carol))
        assert response.status_code == 200, response.text
        assert peer.key_requests == 1  # fetched once, by B
        # B's answer is what C now holds: its notary API serves the peer's keys from its cache.
        (document,) = notary_query(servers.via_notary, fednet, peer.server_name)
        assert peer.key.key_id in document["verify_keys"]
    finally:
        peer.stop()


def test_notary_answer_must_carry_the_pinned_key(servers: Servers, fednet: FederationNet) -> None:
    peer = _lan_peer(fednet)
    try:
        dave = new_user(servers.bad_notary.base_url)
        response = peer.request("GET", servers.bad_notary, profile_uri(dave))
        assert (response.status_code, response.json()["errcode"]) == (401, "M_UNAUTHORIZED")
    finally:
        peer.stop()


def test_domain_whitelist(servers: Servers, fednet: FederationNet) -> None:
    peer = ScriptedPeer(fednet)
    try:
        erin = new_user(servers.fenced.base_url)
        response = peer.request("GET", servers.fenced, profile_uri(erin))
        assert (response.status_code, response.json()["errcode"]) == (403, "M_FORBIDDEN")
        assert notary_query(servers.fenced, fednet, peer.server_name) == []
        assert peer.key_requests == 0
        (document,) = notary_query(servers.fenced, fednet, servers.a.server_name)
        assert document["server_name"] == servers.a.server_name
        # Outbound too: E's users cannot reach B.
        blocked = erin.get(f"/_matrix/client/v3/profile/{quote('@x:' + servers.b.server_name, safe='')}")
        assert (blocked.status, blocked.errcode) == (403, "M_FORBIDDEN")
    finally:
        peer.stop()
