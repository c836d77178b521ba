"""A DNS server of the tests' own, on loopback, answering from a JSON zone file.

Run as ``python -m tests.support.dns_server ZONE_FILE PORT_FILE``: it binds UDP on
127.0.0.1 at a free port (answers are small: no TCP), writes the port to PORT_FILE, and re-reads
ZONE_FILE on every query, so tests add records while it runs.  The zone maps a name
to its records: ``{"a.test": {"A": ["127.0.0.1"], "AAAA": [], "SRV": [[prio, weight, port,
"target"]]}}``.  Unknown names are NXDOMAIN; a known name without the asked type answers
empty.  ``TestDns`` starts and drives it from a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TTL = 1


def serve(zone_path: Path, port_file: Path) -> None:
    from twisted.internet import defer, reactor
    from twisted.names import common, dns, error, server

    class ZoneResolver(common.ResolverBase):
        def _records(self) -> dict[str, Any]:
            # Re-read on every query: the zone is tiny, and tests change it as they go.
            try:
                text = zone_path.read_text()
            except FileNotFoundError:
                return {}
            return {name.lower().rstrip("."): value for name, value in json.loads(text or "{}").items()}

        def _lookup(self, name: bytes, cls: int, type_: int, timeout: Any) -> defer.Deferred[Any]:
            key = name.decode("ascii").lower().rstrip(".")
            entry = self._records().get(key)
            if entry is None:
                return defer.fail(error.DomainError(name))
            answers = []
            if type_ == dns.A:
                answers = [dns.Record_A(address, ttl=TTL) for address in entry.get("A", [])]
            elif type_ == dns.AAAA:
                answers = [dns.Record_AAAA(address, ttl=TTL) for address in entry.get("AAAA", [])]
            elif type_ == dns.SRV:
                answers = [dns.Record_SRV(prio, weight, port, target, ttl=TTL)
                           for prio, weight, port, target in entry.get("SRV", [])]
            rrs = [dns.RRHeader(name, record.TYPE, dns.IN, TTL, record, auth=True) for record in answers]
            return defer.succeed((rrs, [], []))

    factory = server.DNSServerFactory(authorities=[ZoneResolver()])
    udp = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
    port = udp.getHost().port
    port_file.write_text(str(port))
    reactor.run()


class TestDns:
    """The DNS server process for one test session, and the zone it answers from."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.zone_path = directory / "zone.json"
        self.zone: dict[str, dict[str, Any]] = {}
        self._write()
        port_file = directory / "dns.port"
        self.process = subprocess.Popen([sys.executable, "-m", "tests.support.dns_server", str(self.zone_path),
                                         str(port_file)], cwd=str(Path(__file__).resolve().parents[2]),
                                        stdout=subprocess.DEVNULL, stderr=open(directory / "dns.log", "wb"))  # noqa: SIM115
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test DNS server did not start: {(directory / 'dns.log').read_text()}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.address = f"127.0.0.1:{self.port}"

    def _write(self) -> None:
        temporary = self.zone_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.zone))
        temporary.replace(self.zone_path)

    def add(self, name: str, *, a: list[str] | None = None, aaaa: list[str] | None = None,
            srv: list[tuple[int, int, int, str]] | None = None) -> None:
        entry = self.zone.setdefault(name.lower(), {})
        if a is not None:
            entry["A"] = a
        if aaaa is not None:
            entry["AAAA"] = aaaa
        if srv is not None:
            entry["SRV"] = [list(record) for record in srv]
        self._write()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
