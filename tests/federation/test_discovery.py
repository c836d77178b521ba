"""Finding servers ("Resolving server names") and refusing blocked addresses, through our own DNS.

The server under test finds each peer when asked, as a notary, for that peer's keys: a peer's
keys coming back proves discovery reached it, with a certificate valid for the right name.
Peers live on 127.0.0.1 and on random addresses of 127.1/16 (both whitelisted for the server
under test); blocked peers live on 127.2/16, which stays blacklisted, and count connections so
a test can prove they were never dialled.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.federation import (
    FederationNet,
    ScriptedPeer,
    TlsHttpServer,
    federation_url,
    unique_label,
)
from tests.support.server import RunningServer, free_port

FED_SERVER_CONFIG = {"ip_range_whitelist": ["127.0.0.1/32", "127.1.0.0/16"]}


def random_address(second_octet: int) -> str:
    return f"127.{second_octet}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for thing in started:
        thing.stop()


def notary_keys(server: RunningServer, fednet: FederationNet, server_name: str, **params: Any) -> list[dict]:
    response = requests.get(f"{federation_url(server)}/_matrix/key/v2/query/{server_name}", params=params,
                            verify=str(fednet.ca.ca_path), timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["server_keys"]


def found(server: RunningServer, fednet: FederationNet, peer: ScriptedPeer, **params: Any) -> bool:
    documents = notary_keys(server, fednet, peer.server_name, **params)
    return any(d["server_name"] == peer.server_name and peer.key.key_id in d["verify_keys"] for d in documents)


def test_explicit_port(fed_server: RunningServer, fednet: FederationNet, peer: ScriptedPeer) -> None:
    assert found(fed_server, fednet, peer)
    assert peer.key_request_hosts == [peer.server_name]


def test_ip_literal(fed_server: RunningServer, fednet: FederationNet, cleanup: list[Any]) -> None:
    port = free_port()
    peer = ScriptedPeer(fednet, server_name=f"127.0.0.1:{port}", port=port)
    cleanup.append(peer)
    assert found(fed_server, fednet, peer)
    assert peer.key_request_hosts == [f"127.0.0.1:{port}"]


def test_well_known_delegation_with_port(fed_server: RunningServer, fednet: FederationNet,
                                         cleanup: list[Any]) -> None:
    label = unique_label("wk")
    name, delegated = f"{label}.test", f"to-{label}.test"
    port = free_port()
    peer = ScriptedPeer(fednet, server_name=name, cert_names=[delegated], port=port)
    well_known = TlsHttpServer(fednet, [name], random_address(1), 443)
    cleanup += [peer, well_known]
    well_known.routes[("GET", "/.well-known/matrix/server")] = lambda _r: (200, {"m.server": f"{delegated}:{port}"})
    fednet.dns.add(name, a=[well_known.address])
    fednet.dns.add(delegated, a=["127.0.0.1"])
    assert found(fed_server, fednet, peer)
    assert peer.key_request_hosts == [f"{delegated}:{port}"]
    # The well-known answer is cached: a refetch of the keys goes straight to the delegated host.
    assert found(fed_server, fednet, peer, minimum_valid_until_ts=2**53 - 1)
    assert peer.key_requests == 2
    assert [hit[1] for hit in well_known.hits] == ["/.well-known/matrix/server"]


def test_well_known_delegation_to_srv(fed_server: RunningServer, fednet: FederationNet,
                                      cleanup: list[Any]) -> None:
    label = unique_label("wksrv")
    name, delegated, target = f"{label}.test", f"to-{label}.test", f"box-{label}.test"
    peer = ScriptedPeer(fednet, server_name=name, cert_names=[delegated])
    well_known = TlsHttpServer(fednet, [name], random_address(1), 443)
    cleanup += [peer, well_known]
    well_known.routes[("GET", "/.well-known/matrix/server")] = lambda _r: (200, {"m.server": delegated})
    fednet.dns.add(name, a=[well_known.address])
    fednet.dns.add(f"_matrix-fed._tcp.{delegated}", srv=[(10, 5, peer.http.port, target)])
    fednet.dns.add(target, a=["127.0.0.1"])
    assert found(fed_server, fednet, peer)
    assert peer.key_request_hosts == [delegated]


@pytest.mark.parametrize("service", ["_matrix-fed._tcp", "_matrix._tcp"])
def test_srv_without_well_known(fed_server: RunningServer, fednet: FederationNet, cleanup: list[Any],
                                service: str) -> None:
    label = unique_label("srv")
    name, target = f"{label}.test", f"box-{label}.test"
    peer = ScriptedPeer(fednet, server_name=name, cert_names=[name])
    cleanup.append(peer)
    # No A record for the name itself: the well-known lookup fails, then SRV decides.
    fednet.dns.add(f"{service}.{name}", srv=[(10, 5, peer.http.port, target)])
    fednet.dns.add(target, a=["127.0.0.1"])
    assert found(fed_server, fednet, peer)
    assert peer.key_request_hosts == [name]


def test_certificate_must_be_for_the_server_name(fed_server: RunningServer, fednet: FederationNet,
                                                 cleanup: list[Any]) -> None:
    """Behind SRV the certificate must name the server, not merely the SRV target."""
    label = unique_label("badcert")
    name, target = f"{label}.test", f"box-{label}.test"
    peer = ScriptedPeer(fednet, server_name=name, cert_names=[target])  # no certificate for ``name``
    cleanup.append(peer)
    fednet.dns.add(f"_matrix-fed._tcp.{name}", srv=[(10, 5, peer.http.port, target)])
    fednet.dns.add(target, a=["127.0.0.1"])
    assert not found(fed_server, fednet, peer)
    assert peer.key_requests == 0


def test_default_port_8448(fed_server: RunningServer, fednet: FederationNet, cleanup: list[Any]) -> None:
    label = unique_label("plain")
    name = f"{label}.test"
    address = random_address(1)
    peer = ScriptedPeer(fednet, server_name=name, cert_names=[name], address=address, port=8448)
    cleanup.append(peer)
    fednet.dns.add(name, a=[address])  # nothing on 443 there, and no SRV record
    assert found(fed_server, fednet, peer)
    assert peer.key_request_hosts == [name]


def _blocked_peer(fednet: FederationNet, cleanup: list[Any], **kwargs: Any) -> ScriptedPeer:
    address = random_address(2)
    port = free_port()
    peer = ScriptedPeer(fednet, address=address, port=port, **kwargs)
    cleanup.append(peer)
    return peer


def test_blacklisted_address_is_never_dialled(fed_server: RunningServer, fednet: FederationNet,
                                              cleanup: list[Any]) -> None:
    peer = _blocked_peer(fednet, cleanup)  # <label>.test:<port> -> 127.2.x.y
    assert not found(fed_server, fednet, peer)
    literal = ScriptedPeer(fednet, server_name=f"{peer.http.address}:{peer.http.port}")
    literal.http.stop()
    literal.http = peer.http
    assert not found(fed_server, fednet, literal)
    assert peer.http.connections == 0


def test_one_blacklisted_address_taints_the_name(fed_server: RunningServer, fednet: FederationNet,
                                                 cleanup: list[Any]) -> None:
    label = unique_label("mixed")
    port = free_port()
    peer = ScriptedPeer(fednet, server_name=f"{label}.test:{port}", cert_names=[f"{label}.test"], port=port)
    cleanup.append(peer)
    fednet.dns.add(f"{label}.test", a=["127.0.0.1", random_address(2)])
    assert not found(fed_server, fednet, peer)
    assert peer.http.connections == 0


def test_well_known_cannot_delegate_to_a_blacklisted_address(fed_server: RunningServer, fednet: FederationNet,
                                                             cleanup: list[Any]) -> None:
    label = unique_label("wkevil")
    name = f"{label}.test"
    target = _blocked_peer(fednet, cleanup, server_name=name, cert_names=[name])
    well_known = TlsHttpServer(fednet, [name], random_address(1), 443)
    cleanup.append(well_known)
    delegated = f"{target.http.address}:{target.http.port}"
    well_known.routes[("GET", "/.well-known/matrix/server")] = lambda _r: (200, {"m.server": delegated})
    fednet.dns.add(name, a=[well_known.address])
    assert not found(fed_server, fednet, target)
    assert len(well_known.hits) == 1
    assert target.http.connections == 0


def test_invalid_well_known_falls_back(fed_server: RunningServer, fednet: FederationNet,
                                       cleanup: list[Any]) -> None:
    """A well-known document that is not valid is ignored: SRV, then port 8448 are tried."""
    label = unique_label("wkjunk")
    name, target = f"{label}.test", f"box-{label}.test"
    peer = ScriptedPeer(fednet, server_name=name, cert_names=[name])
    well_known = TlsHttpServer(fednet, [name], random_address(1), 443)
    cleanup += [peer, well_known]
    well_known.routes[("GET", "/.well-known/matrix/server")] = lambda _r: (200, {"m.server": 42})
    fednet.dns.add(name, a=[well_known.address])
    fednet.dns.add(f"_matrix-fed._tcp.{name}", srv=[(10, 5, peer.http.port, target)])
    fednet.dns.add(target, a=["127.0.0.1"])
    assert found(fed_server, fednet, peer)
    assert len(well_known.hits) == 1
