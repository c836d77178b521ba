"""Federation test kit: a network of test servers on loopback that trust one test CA and
resolve names through the tests' own DNS server.

- ``FederationNet``: the CA and DNS server (one per test session), and ``start_server()`` for a
  Vignette process with a client listener and a TLS federation listener whose server name
  resolves through that DNS.
- ``ScriptedPeer``: a small federation server of the test's own (stdlib HTTPS in a thread) with its
  own signing key, that serves ``/_matrix/key/v2/server`` and sends signed (or deliberately
  mis-signed) requests to a server under test.
- ``TlsHttpServer``: a bare HTTPS server in a thread (well-known documents, a listener that
  counts connections to prove an address was never dialled).
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import nacl.signing
import requests

from federation.transport.x_matrix import XMatrixCredential, format_credential, sign_request
from homeserver.events.builder import ServerSigningKey
from homeserver.events.signing import sign_json
from homeserver.events.unpadded_base64 import encode_base64
from tests.support.dns_server import TestDns
from tests.support.server import RunningServer, free_port, start_test_server
from tests.support.tls_ca import TestCA

Route = Callable[[BaseHTTPRequestHandler], tuple[int, Any]]


def federation_port(server: RunningServer) -> int:
    return int(server.config["listeners"][1]["port"])


def federation_url(server: RunningServer) -> str:
    return f"https://127.0.0.1:{federation_port(server)}"


def unique_label(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@attrs.define
class FederationNet:
    directory: Path
    ca: TestCA
    dns: TestDns

    @classmethod
    def create(cls, directory: Path) -> FederationNet:
        return cls(directory, TestCA(directory / "ca"), TestDns(directory / "dns"))

    def stop(self) -> None:
        self.dns.stop()

    def federation_config(self, server_name: str, federation_port: int, cert_names: list[str],
                          federation_bind: str = "127.0.0.1") -> dict[str, Any]:
        """The config keys that put a server on this network."""
        cert, key = self.ca.issue([*cert_names, "localhost"], ["127.0.0.1"])
        return {
            "server_name": server_name,
            "listeners": [
                {"port": free_port(), "bind_addresses": ["127.0.0.1"], "type": "http",
                 "resources": [{"names": ["client", "health"]}]},
                {"port": federation_port, "bind_addresses": [federation_bind], "type": "http", "tls": True,
                 "resources": [{"names": ["federation", "keys"]}]},
            ],
            "tls_certificate_path": str(cert),
            "tls_private_key_path": str(key),
            "outbound_dns_servers": [self.dns.address],
            "federation_custom_ca_list": [str(self.ca.ca_path)],
            # Loopback 127.0.0.1 is where the test servers live; the rest of 127/8 stays blocked,
            # so tests can prove a blocked address is never dialled.
            "ip_range_whitelist": ["127.0.0.1/32"],
        }

    def start_server(self, directory: Path, engine: str, label: str | None = None, *,
                     server_name: str | None = None, extra_cert_names: list[str] = (),  # type: ignore[assignment]
                     federation_bind: str = "127.0.0.1", localhost_name: bool = False,
                     **overrides: Any) -> tuple[RunningServer, dict[str, Any]]:
        """A Vignette process named ``<label>.test:<federation port>`` unless ``server_name`` says otherwise;
        ``localhost_name`` names it ``localhost:<federation port>``, a name servers that do not use our DNS
        (Synapse) can resolve through /etc/hosts."""
        label = label or unique_label("hs")
        port = free_port()
        host = f"{label}.test"
        self.dns.add(host, a=["127.0.0.1"])
        name = server_name or (f"localhost:{port}" if localhost_name else f"{host}:{port}")
        config = self.federation_config(name, port, [host, *extra_cert_names], federation_bind)
        config.update(overrides)
        return start_test_server(directory, engine, **config)


class _Handler(BaseHTTPRequestHandler):
    server: _RoutingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.hits.append((self.command, self.path, self.headers.get("Host", "")))
        path = self.path.split("?")[0]
        route = self.server.routes.get((self.command, path)) or next(
            (handler for (method, pattern), handler in self.server.routes.items()
             if method == self.command and pattern.endswith("*") and path.startswith(pattern[:-1])), None)
        status, body = route(self) if route else (404, {"errcode": "M_UNRECOGNIZED", "error": "no route"})
        if status == 0:
            return  # the route wrote its own response
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Connection", "close")  # HTTP/1.0: one request per connection
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = _dispatch


class _RoutingServer(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[tuple[str, str], Route]
    hits: list[tuple[str, str, str]]  # method, path, Host header
    connections: int = 0

    def get_request(self) -> Any:
        sock, address = super().get_request()
        self.connections += 1
        return sock, address


class TlsHttpServer:
    """HTTPS on (address, port) with a certificate from the test CA; routes by (method, path),
    where a path ending in ``*`` matches every path it begins."""

    def __init__(self, net: FederationNet, names: list[str], address: str = "127.0.0.1", port: int = 0) -> None:
        cert, key = net.ca.issue([*names, "localhost"], [address])
        self.httpd = _RoutingServer((address, port), _Handler)
        self.httpd.routes = {}
        self.httpd.hits = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.address = address
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def routes(self) -> dict[tuple[str, str], Route]:
        return self.httpd.routes

    @property
    def hits(self) -> list[tuple[str, str, str]]:
        return self.httpd.hits

    @property
    def connections(self) -> int:
        return self.httpd.connections

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ScriptedPeer:
    """A federation peer the test controls: its own key, its own key server, its own requests."""

    def __init__(self, net: FederationNet, label: str | None = None, *, server_name: str | None = None,
                 address: str = "127.0.0.1", port: int = 0, cert_names: list[str] = ()) -> None:  # type: ignore[assignment]
        """By default ``<label>.test:<port>`` with an A record for 127.0.0.1; ``server_name`` (with
        ``cert_names``, ``address`` and ``port``) sets up a peer that discovery has to find."""
        self.net = net
        host = f"{label or unique_label('peer')}.test"
        if server_name is None:
            net.dns.add(host, a=[address])
        self.http = TlsHttpServer(net, [host, *cert_names], address, port)
        self.server_name = server_name or f"{host}:{self.http.port}"
        self.key = ServerSigningKey(self.server_name, f"ed25519:p{secrets.token_hex(2)}",
                                    nacl.signing.SigningKey.generate())
        self.valid_for_ms = 3_600_000  # the key document's valid_until_ts is now plus this
        self.old_keys: dict[str, tuple[nacl.signing.VerifyKey, int]] = {}  # key ID -> (key, expired_ts)
        self.http.routes[("GET", "/_matrix/key/v2/server")] = lambda _request: (200, self.key_document())

    @property
    def key_requests(self) -> int:
        return len(self.key_request_hosts)

    @property
    def key_request_hosts(self) -> list[str]:
        """The Host header of each request for our keys."""
        return [host for _method, path, host in self.http.hits if path.startswith("/_matrix/key/v2/server")]

    def key_document(self) -> dict[str, Any]:
        import time

        document = {
            "server_name": self.server_name,
            "valid_until_ts": int(time.time() * 1000) + self.valid_for_ms,
            "verify_keys": {self.key.key_id: {"key": encode_base64(bytes(self.key.signing_key.verify_key))}},
            "old_verify_keys": {key_id: {"key": encode_base64(bytes(key)), "expired_ts": expired_ts}
                                for key_id, (key, expired_ts) in self.old_keys.items()},
        }
        return sign_json(document, self.server_name, self.key.key_id, self.key.signing_key)

    def authorization(self, method: str, uri: str, destination: str, body: Any = None, *,
                      key: ServerSigningKey | None = None) -> str:
        return sign_request(key or self.key, method, uri, destination, body)

    def request(self, method: str, server: RunningServer, uri: str, body: Any = None, *,
                authorization: str | None | bool = True, destination: str | None = None,
                raw_body: bytes | None = None, key: ServerSigningKey | None = None) -> requests.Response:
        """Send ``method uri`` to ``server``'s federation listener, signed for ``destination``
        (default: the server) unless ``authorization`` gives the header (or False: none)."""
        headers = {"Content-Type": "application/json"}
        if authorization is True:
            headers["Authorization"] = self.authorization(method, uri, destination or server.server_name, body,
                                                          key=key)
        elif isinstance(authorization, str):
            headers["Authorization"] = authorization
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        return requests.request(method, federation_url(server) + uri, data=data, headers=headers,
                                verify=str(self.net.ca.ca_path), timeout=30)

    def credential(self, **changes: str | None) -> str:
        """An X-Matrix header with fields replaced (for malformed-header tests)."""
        base = XMatrixCredential(self.server_name, None, self.key.key_id, "AAAA")
        return format_credential(attrs.evolve(base, **changes))

    def stop(self) -> None:
        self.http.stop()
