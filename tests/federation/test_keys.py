"""Our signing keys (``/_matrix/key/v2/server``) and the notary API, over HTTPS, as peers see them."""

from __future__ import annotations

import time
from typing import Any

import nacl.signing
import pytest
import requests

from homeserver.events.signing import SignatureError, verify_json_signature
from homeserver.events.unpadded_base64 import decode_base64, encode_base64
from homeserver.signing_key import read_signing_keys
from tests.support.federation import FederationNet, ScriptedPeer, federation_url
from tests.support.server import RunningServer

OLD_KEY = nacl.signing.SigningKey.generate().verify_key
OLD_KEY_B64 = encode_base64(bytes(OLD_KEY))
FED_SERVER_CONFIG = {
    # Synapse's shape; padded base64 is accepted as Synapse accepts it.
    "old_signing_keys": {"ed25519:retired_1": {"key": OLD_KEY_B64 + "=", "expired_ts": 1_600_000_000_000}},
    # Delegation through a reverse proxy: /.well-known/matrix/server points at it.
    "serve_server_wellknown": True,
    "public_baseurl": "https://matrix.example.org/",
}
DAY_MS = 86_400_000


def get(server: RunningServer, path: str, fednet: FederationNet, **kwargs: Any) -> requests.Response:
    return requests.get(federation_url(server) + path, verify=str(fednet.ca.ca_path), timeout=30, **kwargs)


def post(server: RunningServer, path: str, fednet: FederationNet, **kwargs: Any) -> requests.Response:
    return requests.post(federation_url(server) + path, verify=str(fednet.ca.ca_path), timeout=30, **kwargs)


def own_keys(server: RunningServer) -> dict[str, nacl.signing.VerifyKey]:
    return {entry.key_id: entry.key.verify_key for entry in read_signing_keys(server.config["signing_key_path"])}


def test_server_keys_document(fed_server: RunningServer, fednet: FederationNet) -> None:
    before = int(time.time() * 1000)
    response = get(fed_server, "/_matrix/key/v2/server", fednet)
    assert response.status_code == 200
    document = response.json()
    keys = own_keys(fed_server)
    assert document["server_name"] == fed_server.server_name
    assert {key_id: entry["key"] for key_id, entry in document["verify_keys"].items()} == {
        key_id: encode_base64(bytes(key)) for key_id, key in keys.items()}
    assert document["old_verify_keys"] == {"ed25519:retired_1": {"key": OLD_KEY_B64, "expired_ts": 1_600_000_000_000}}
    # key_refresh_interval defaults to one day.
    assert before + DAY_MS <= document["valid_until_ts"] <= int(time.time() * 1000) + DAY_MS
    verify_json_signature(document, fed_server.server_name, keys)
    tampered = dict(document, valid_until_ts=document["valid_until_ts"] + 1)
    with pytest.raises(SignatureError):
        verify_json_signature(tampered, fed_server.server_name, keys)


def test_deprecated_key_id_path_and_no_other_methods(fed_server: RunningServer, fednet: FederationNet) -> None:
    key_id = next(iter(own_keys(fed_server)))
    assert get(fed_server, f"/_matrix/key/v2/server/{key_id}", fednet).json()["server_name"] == fed_server.server_name
    response = post(fed_server, "/_matrix/key/v2/server", fednet, json={})
    assert (response.status_code, response.json()["errcode"]) == (405, "M_UNRECOGNIZED")


def test_notary_answers_for_itself(fed_server: RunningServer, fednet: FederationNet) -> None:
    response = get(fed_server, f"/_matrix/key/v2/query/{fed_server.server_name}", fednet)
    assert response.status_code == 200
    (document,) = response.json()["server_keys"]
    assert document["server_name"] == fed_server.server_name
    verify_json_signature(document, fed_server.server_name, own_keys(fed_server))


def _peer_document(answer: dict[str, Any], peer: ScriptedPeer) -> dict[str, Any]:
    (document,) = [d for d in answer["server_keys"] if d["server_name"] == peer.server_name]
    return document


def test_notary_fetches_caches_and_countersigns(fed_server: RunningServer, fednet: FederationNet,
                                                peer: ScriptedPeer) -> None:
    response = get(fed_server, f"/_matrix/key/v2/query/{peer.server_name}", fednet)
    assert response.status_code == 200
    document = _peer_document(response.json(), peer)
    assert document["verify_keys"] == {
        peer.key.key_id: {"key": encode_base64(bytes(peer.key.signing_key.verify_key))}}
    # Signed by the peer itself and countersigned by the notary.
    verify_json_signature(document, peer.server_name, {peer.key.key_id: peer.key.signing_key.verify_key})
    verify_json_signature(document, fed_server.server_name, own_keys(fed_server))
    assert peer.key_requests == 1

    # From the cache: the same document, no new fetch; the POST form and a key ID in the path too.
    again = get(fed_server, f"/_matrix/key/v2/query/{peer.server_name}/{peer.key.key_id}", fednet)
    assert _peer_document(again.json(), peer)["valid_until_ts"] == document["valid_until_ts"]
    batch = post(fed_server, "/_matrix/key/v2/query", fednet, json={"server_keys": {
        peer.server_name: {peer.key.key_id: {"minimum_valid_until_ts": 0}}}})
    assert batch.status_code == 200
    assert _peer_document(batch.json(), peer)["valid_until_ts"] == document["valid_until_ts"]
    assert peer.key_requests == 1

    # Asking for validity beyond what we hold makes the notary ask the peer again.
    beyond = document["valid_until_ts"] + 1
    refreshed = get(fed_server, f"/_matrix/key/v2/query/{peer.server_name}", fednet,
                    params={"minimum_valid_until_ts": beyond})
    assert peer.key_requests == 2
    assert _peer_document(refreshed.json(), peer)["valid_until_ts"] > document["valid_until_ts"]


def test_notary_keeps_serving_keys_of_a_server_that_went_away(fed_server: RunningServer, fednet: FederationNet,
                                                              peer: ScriptedPeer) -> None:
    first = get(fed_server, f"/_matrix/key/v2/query/{peer.server_name}", fednet).json()
    peer.stop()
    beyond = _peer_document(first, peer)["valid_until_ts"] + 1
    later = get(fed_server, f"/_matrix/key/v2/query/{peer.server_name}", fednet,
                params={"minimum_valid_until_ts": beyond})
    assert later.status_code == 200
    assert _peer_document(later.json(), peer)["verify_keys"] == _peer_document(first, peer)["verify_keys"]


def test_notary_for_unknown_server_is_empty(fed_server: RunningServer, fednet: FederationNet) -> None:
    response = get(fed_server, "/_matrix/key/v2/query/nowhere.invalid", fednet)
    assert response.status_code == 200
    assert response.json() == {"server_keys": []}
    assert post(fed_server, "/_matrix/key/v2/query", fednet, json={"server_keys": {}}).json() == {"server_keys": []}


@pytest.mark.parametrize(("body", "status", "errcode"), [
    (b"not json", 400, "M_NOT_JSON"),
    (b"[1, 2]", 400, "M_NOT_JSON"),
    (b"{}", 400, "M_MISSING_PARAM"),
    (b'{"server_keys": []}', 400, "M_BAD_JSON"),
    (b'{"server_keys": {"a.test": []}}', 400, "M_BAD_JSON"),
    (b'{"server_keys": {"a.test": {"ed25519:x": 5}}}', 400, "M_BAD_JSON"),
    (b'{"server_keys": {"a.test": {"ed25519:x": {"minimum_valid_until_ts": "soon"}}}}', 400, "M_BAD_JSON"),
    (b'{"server_keys": {"not a server!": {}}}', 400, "M_INVALID_PARAM"),
    (b'{"server_keys": {"a.test": {}}, "x": NaN}', 400, "M_NOT_JSON"),
])
def test_notary_query_bad_input(fed_server: RunningServer, fednet: FederationNet, body: bytes, status: int,
                                errcode: str) -> None:
    response = post(fed_server, "/_matrix/key/v2/query", fednet, data=body)
    assert (response.status_code, response.json()["errcode"]) == (status, errcode)


def test_notary_query_limits(fed_server: RunningServer, fednet: FederationNet) -> None:
    many = {"server_keys": {f"s{i}.invalid": {} for i in range(101)}}
    response = post(fed_server, "/_matrix/key/v2/query", fednet, json=many)
    assert (response.status_code, response.json()["errcode"]) == (400, "M_INVALID_PARAM")
    huge = b'{"server_keys": {"a.test": {}}, "pad": "' + b"x" * (300 * 1024) + b'"}'
    response = post(fed_server, "/_matrix/key/v2/query", fednet, data=huge)
    assert (response.status_code, response.json()["errcode"]) == (413, "M_TOO_LARGE")
    response = get(fed_server, "/_matrix/key/v2/query/a.test", fednet, params={"minimum_valid_until_ts": "x"})
    assert (response.status_code, response.json()["errcode"]) == (400, "M_INVALID_PARAM")
    response = get(fed_server, "/_matrix/key/v2/query/bad%20name", fednet)
    assert (response.status_code, response.json()["errcode"]) == (400, "M_INVALID_PARAM")


def test_version_and_unknown_paths(fed_server: RunningServer, fednet: FederationNet) -> None:
    response = get(fed_server, "/_matrix/federation/v1/version", fednet)
    assert response.status_code == 200
    assert response.json()["server"]["name"] == "Vignette"
    assert isinstance(response.json()["server"]["version"], str)
    for path in ("/_matrix/federation/v1/nonsense", "/_matrix/federation/v9/version", "/_matrix/key/v3/server"):
        response = get(fed_server, path, fednet)
        assert (response.status_code, response.json()["errcode"]) == (404, "M_UNRECOGNIZED"), path
    response = post(fed_server, "/_matrix/federation/v1/version", fednet, json={})
    assert (response.status_code, response.json()["errcode"]) == (405, "M_UNRECOGNIZED")


def test_client_api_is_not_on_the_federation_listener(fed_server: RunningServer, fednet: FederationNet) -> None:
    response = get(fed_server, "/_matrix/client/versions", fednet)
    assert (response.status_code, response.json()["errcode"]) == (404, "M_UNRECOGNIZED")


def test_old_key_is_the_one_configured(fed_server: RunningServer, fednet: FederationNet) -> None:
    document = get(fed_server, "/_matrix/key/v2/server", fednet).json()
    assert decode_base64(document["old_verify_keys"]["ed25519:retired_1"]["key"]) == bytes(OLD_KEY)


def test_server_well_known_delegates_to_public_baseurl(fed_server: RunningServer, fednet: FederationNet) -> None:
    for response in (get(fed_server, "/.well-known/matrix/server", fednet),
                     requests.get(fed_server.base_url + "/.well-known/matrix/server", timeout=30)):
        assert response.status_code == 200, response.text
        assert response.json() == {"m.server": "matrix.example.org:443"}
        assert response.headers["Cache-Control"] == "max-age=86400"
