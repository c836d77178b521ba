"""How outbound TLS connections check the peer: a trust root and SNI for the expected name.

``VerifyingTls`` checks the certificate chain against a trust root (the
platform's, or a custom CA list) and the certificate's names against the name
we meant to reach (a DNS name or an IP address).  ``UnverifiedTls`` still
sends SNI but accepts any certificate; it exists for tests and closed networks
(``federation_verify_certificates: false``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer


class TlsPolicy(Protocol):
    def creator_for(self, hostname: str) -> IOpenSSLClientConnectionCreator: ...


class VerifyingTls:
    """Verify the chain against ``ca_files`` (PEM) or the platform trust store, and the name."""

    def __init__(self, ca_files: Iterable[str] | None = None) -> None:
        files = list(ca_files or [])
        if files:
            certificates = []
            for path in files:
                with open(path, "rb") as handle:
                    certificates.extend(_split_pem(handle.read()))
            self._trust_root: Any = ssl.trustRootFromCertificates(certificates)
        else:
            self._trust_root = ssl.platformTrust()

    def creator_for(self, hostname: str) -> IOpenSSLClientConnectionCreator:
        return ssl.optionsForClientTLS(hostname, trustRoot=self._trust_root)


class UnverifiedTls:
    """SNI for DNS names, no certificate checks at all."""

    def __init__(self) -> None:
        self._context = ssl.CertificateOptions(verify=False).getContext()

    def creator_for(self, hostname: str) -> IOpenSSLClientConnectionCreator:
        return _UnverifiedCreator(self._context, hostname)


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedCreator:
    def __init__(self, context: SSL.Context, hostname: str) -> None:
        self._context = context
        self._hostname = hostname

    def clientConnectionForTLS(self, tls_protocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        if not (isIPAddress(self._hostname) or isIPv6Address(self._hostname)):
            connection.set_tlsext_host_name(self._hostname.encode("idna"))
        connection.set_app_data(tls_protocol)
        return connection


def _split_pem(data: bytes) -> list[ssl.Certificate]:
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in data.split(marker) if b"-----BEGIN CERTIFICATE-----" in block]
    return [ssl.Certificate.loadPEM(block.strip() + b"\n") for block in blocks]
