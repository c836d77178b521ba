"""Inbound X-Matrix authentication, as a hostile peer would probe it, and the queries behind it."""

from __future__ import annotations

from urllib.parse import quote

import nacl.signing
import pytest

from homeserver.events.builder import ServerSigningKey
from tests.support.client import Client
from tests.support.federation import FederationNet, ScriptedPeer
from tests.support.rooms import create_room, new_user
from tests.support.server import RunningServer

FED_SERVER_CONFIG = {"allow_public_rooms_over_federation": True}
PROFILE = "/_matrix/federation/v1/query/profile"


@pytest.fixture(scope="module")
def alice(fed_server: RunningServer) -> Client:
    client = new_user(fed_server.base_url)
    response = client.put(f"/_matrix/client/v3/profile/{quote(client.user_id, safe='')}/displayname",
                          {"displayname": "Alice Federated"})
    assert response.status == 200
    return client


def profile_uri(user_id: str, field: str | None = None) -> str:
    uri = f"{PROFILE}?user_id={quote(user_id, safe='')}"
    return uri + (f"&field={quote(field, safe='')}" if field else "")


def errcode(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return response.status_code, response.json().get("errcode")


def test_signed_request_is_answered(fed_server: RunningServer, peer: ScriptedPeer, alice: Client) -> None:
    response = peer.request("GET", fed_server, profile_uri(alice.user_id))
    assert response.status_code == 200, response.text
    assert response.json()["displayname"] == "Alice Federated"
    field = peer.request("GET", fed_server, profile_uri(alice.user_id, "displayname"))
    assert field.json() == {"displayname": "Alice Federated"}
    unset = peer.request("GET", fed_server, profile_uri(alice.user_id, "avatar_url"))
    assert unset.json() == {"avatar_url": None}
    assert peer.key_requests == 1  # our key was fetched once, then cached


def test_missing_header(fed_server: RunningServer, peer: ScriptedPeer, alice: Client) -> None:
    response = peer.request("GET", fed_server, profile_uri(alice.user_id), authorization=False)
    assert errcode(response) == (401, "M_UNAUTHORIZED")
    response = peer.request("GET", fed_server, profile_uri(alice.user_id), authorization="Bearer abc")
    assert errcode(response) == (401, "M_UNAUTHORIZED")


@pytest.mark.parametrize("header", [
    "X-Matrix",
    "X-Matrix origin=",
    'X-Matrix origin="a.test",key="ed25519:x"',
    'X-Matrix origin="a.test",key="ed25519:x",sig="unterminated',
    'X-Matrix origin="a.test" key="ed25519:x" sig="abc"',
    'X-Matrix origin="a.test",origin="b.test",key="ed25519:x",sig="abc"',
    'X-Matrix origin="not a server name!",key="ed25519:x",sig="abc"',
])
def test_malformed_header(fed_server: RunningServer, peer: ScriptedPeer, alice: Client, header: str) -> None:
    response = peer.request("GET", fed_server, profile_uri(alice.user_id), authorization=header)
    assert errcode(response) == (401, "M_UNAUTHORIZED")


def test_bad_signature(fed_server: RunningServer, peer: ScriptedPeer, alice: Client) -> None:
    uri = profile_uri(alice.user_id)
    good = peer.authorization("GET", uri, fed_server.server_name)
    forged = good.replace('sig="', 'sig="AAAA')
    assert errcode(peer.request("GET", fed_server, uri, authorization=forged)) == (401, "M_UNAUTHORIZED")
    # A valid signature over a different request does not authorise this one.
    other = peer.authorization("GET", profile_uri("@someone:else.test"), fed_server.server_name)
    assert errcode(peer.request("GET", fed_server, uri, authorization=other)) == (401, "M_UNAUTHORIZED")
    # Signed by another key that claims the peer's key ID.
    impostor = ServerSigningKey(peer.server_name, peer.key.key_id, nacl.signing.SigningKey.generate())
    assert errcode(peer.request("GET", fed_server, uri, key=impostor)) == (401, "M_UNAUTHORIZED")


def test_signature_covers_the_body(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    path = "/_matrix/federation/v1/publicRooms"
    header = peer.authorization("POST", path, fed_server.server_name, {"limit": 1})
    response = peer.request("POST", fed_server, path, {"limit": 2}, authorization=header)
    assert errcode(response) == (401, "M_UNAUTHORIZED")
    assert peer.request("POST", fed_server, path, {"limit": 1}, authorization=header).status_code == 200


def test_unknown_key_is_refused_and_not_refetched(fed_server: RunningServer, peer: ScriptedPeer,
                                                  alice: Client) -> None:
    stranger = ServerSigningKey(peer.server_name, "ed25519:unknown", nacl.signing.SigningKey.generate())
    uri = profile_uri(alice.user_id)
    assert errcode(peer.request("GET", fed_server, uri, key=stranger)) == (401, "M_UNAUTHORIZED")
    fetched = peer.key_requests
    assert fetched == 1
    assert errcode(peer.request("GET", fed_server, uri, key=stranger)) == (401, "M_UNAUTHORIZED")
    assert peer.key_requests == fetched  # the failed lookup is remembered for a while
    # The peer's real key still works, from the key document fetched the first time.
    assert peer.request("GET", fed_server, uri).status_code == 200
    assert peer.key_requests == fetched


def test_wrong_destination(fed_server: RunningServer, peer: ScriptedPeer, alice: Client) -> None:
    response = peer.request("GET", fed_server, profile_uri(alice.user_id), destination="someone-else.test")
    assert errcode(response) == (401, "M_UNAUTHORIZED")


def test_destination_may_be_omitted(fed_server: RunningServer, peer: ScriptedPeer, alice: Client) -> None:
    """Older servers send no destination; the signature then covers our name as destination."""
    uri = profile_uri(alice.user_id)
    header = peer.authorization("GET", uri, fed_server.server_name).replace(
        f'destination="{fed_server.server_name}",', "")
    assert "destination" not in header
    assert peer.request("GET", fed_server, uri, authorization=header).status_code == 200


def test_origin_that_cannot_be_reached(fed_server: RunningServer, fednet: FederationNet, alice: Client) -> None:
    ghost = ScriptedPeer(fednet)
    ghost.stop()
    response = ghost.request("GET", fed_server, profile_uri(alice.user_id))
    assert errcode(response) == (401, "M_UNAUTHORIZED")


def test_profile_query_errors(fed_server: RunningServer, peer: ScriptedPeer, alice: Client) -> None:
    assert errcode(peer.request("GET", fed_server, PROFILE)) == (400, "M_MISSING_PARAM")
    assert errcode(peer.request("GET", fed_server, profile_uri("not-a-user"))) == (400, "M_INVALID_PARAM")
    assert errcode(peer.request("GET", fed_server, profile_uri("@bob:other.test"))) == (400, "M_INVALID_PARAM")
    nobody = f"@nobody:{fed_server.server_name}"
    assert errcode(peer.request("GET", fed_server, profile_uri(nobody))) == (404, "M_NOT_FOUND")
    assert errcode(peer.request("GET", fed_server, profile_uri(alice.user_id, "BAD KEY"))) == (400, "M_INVALID_PARAM")
    assert errcode(peer.request("GET", fed_server, profile_uri(alice.user_id, "org.example.unset"))) == \
        (404, "M_NOT_FOUND")


def test_directory_query(fed_server: RunningServer, peer: ScriptedPeer, alice: Client) -> None:
    room_id = create_room(alice, room_alias_name="fedlobby")
    alias = f"#fedlobby:{fed_server.server_name}"
    uri = f"/_matrix/federation/v1/query/directory?room_alias={quote(alias, safe='')}"
    response = peer.request("GET", fed_server, uri)
    assert response.status_code == 200
    assert response.json() == {"room_id": room_id, "servers": [fed_server.server_name]}
    missing = f"/_matrix/federation/v1/query/directory?room_alias={quote('#nope:' + fed_server.server_name)}"
    assert errcode(peer.request("GET", fed_server, missing)) == (404, "M_NOT_FOUND")
    assert errcode(peer.request("GET", fed_server, "/_matrix/federation/v1/query/directory")) == \
        (400, "M_MISSING_PARAM")
    bad = "/_matrix/federation/v1/query/directory?room_alias=lobby"
    assert errcode(peer.request("GET", fed_server, bad)) == (400, "M_INVALID_PARAM")


def test_unknown_query_type(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    response = peer.request("GET", fed_server, "/_matrix/federation/v1/query/org.example.weather")
    assert errcode(response) == (404, "M_UNRECOGNIZED")
    # ... but only for an authenticated peer.
    response = peer.request("GET", fed_server, "/_matrix/federation/v1/query/org.example.weather",
                            authorization=False)
    assert errcode(response) == (401, "M_UNAUTHORIZED")


def test_public_rooms_over_federation(fed_server: RunningServer, peer: ScriptedPeer, alice: Client) -> None:
    room_id = create_room(alice, visibility="public", name="Open lounge")
    response = peer.request("GET", fed_server, "/_matrix/federation/v1/publicRooms?limit=50")
    assert response.status_code == 200
    assert room_id in [entry["room_id"] for entry in response.json()["chunk"]]
    search = peer.request("POST", fed_server, "/_matrix/federation/v1/publicRooms",
                          {"filter": {"generic_search_term": "lounge"}, "limit": 10})
    assert [entry["room_id"] for entry in search.json()["chunk"]] == [room_id]
    assert errcode(peer.request("GET", fed_server, "/_matrix/federation/v1/publicRooms",
                                authorization=False)) == (401, "M_UNAUTHORIZED")


@pytest.mark.parametrize(("raw", "expected"), [
    (b"{not json", (400, "M_NOT_JSON")),
    (b'"a string"', (400, "M_BAD_JSON")),
    (b'{"limit": "ten"}', (400, "M_BAD_JSON")),
    (b'{"limit": -1}', (400, "M_BAD_JSON")),
    (b'{"filter": []}', (400, "M_BAD_JSON")),
    (b'{"filter": {"generic_search_term": 5}}', (400, "M_BAD_JSON")),
    (b'{"include_all_networks": "yes"}', (400, "M_BAD_JSON")),
    (b'{"since": "garbage"}', (400, "M_INVALID_PARAM")),
    (b'{"pad": "' + b"x" * (70 * 1024) + b'"}', (413, "M_TOO_LARGE")),
])
def test_public_rooms_bad_bodies(fed_server: RunningServer, peer: ScriptedPeer, raw: bytes,
                                 expected: tuple[int, str]) -> None:
    """Signed (over whatever parses) or not, bad bodies get the spec's error, never a 500."""
    response = peer.request("POST", fed_server, "/_matrix/federation/v1/publicRooms", raw_body=raw,
                            authorization=peer.authorization("POST", "/_matrix/federation/v1/publicRooms",
                                                             fed_server.server_name, _parsed(raw)))
    assert errcode(response) == expected


def _parsed(raw: bytes) -> object:
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return None


def test_public_rooms_bad_query_params(fed_server: RunningServer, peer: ScriptedPeer) -> None:
    for uri in ("/_matrix/federation/v1/publicRooms?limit=x",
                "/_matrix/federation/v1/publicRooms?include_all_networks=maybe"):
        assert errcode(peer.request("GET", fed_server, uri)) == (400, "M_INVALID_PARAM"), uri
