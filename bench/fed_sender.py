"""The transaction sender on its own (no Synapse to compare with yet: the receiving side lands
with the federation receiver): an in-process Vignette on SQLite or PostgreSQL sends to a
scripted HTTPS peer on loopback.

- latency: one message at a time, from the client's PUT answered to the peer holding it;
- drain: N messages queued while the peer is down, then the time from its return until it
  holds all of them (transactions of 50, one in flight).

    .venv/bin/python -m bench.fed_sender [--engine sqlite3|psycopg2] [--messages 200] [--queued 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor, task

from bench.stats import latency_summary
from tests.support.databases import drop_database, fresh_database_config
from tests.support.fed_sender import RecordingPeer, in_process_config, start_in_process
from tests.support.federation import FederationNet


async def _wait_for(check: Any, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the peer did not receive everything")
        await task.deferLater(reactor, 0.001, lambda: None)


async def run(engine: str, messages: int, queued: int) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="fed-sender-bench-"))
    net = FederationNet.create(directory / "net")
    database = fresh_database_config(engine, directory)
    config = in_process_config(net, directory / "hs", database, federation={
        "destination_min_retry_interval": "100ms", "destination_max_retry_interval": "200ms"})
    server = await start_in_process(config)
    peer = RecordingPeer(net, server.verify_keys, lambda: server.server_name)
    try:
        from tests.federation.test_sender import room_with, send_text

        alice, room_id = await room_with(server, peer.scripted)

        def held() -> set[str]:
            return {event.event_id for event in peer.events()}

        samples = []
        for i in range(messages):
            event_id = await send_text(server, alice, room_id, f"latency {i}")
            started = time.perf_counter()
            await _wait_for(lambda event_id=event_id: event_id in held())
            samples.append(time.perf_counter() - started)
        peer.go_down()
        backlog = [await send_text(server, alice, room_id, f"queued {i}") for i in range(queued)]
        peer.come_up()
        started = time.perf_counter()
        await _wait_for(lambda: set(backlog) <= held())
        drain_s = time.perf_counter() - started
        return {"engine": engine, **latency_summary(samples, "put_to_peer_"),
                "queued": queued, "drain_s": round(drain_s, 3), "drain_events_per_s": round(queued / drain_s, 1),
                "transactions": len(peer.accepted())}
    finally:
        peer.stop()
        await server.stop()
        net.stop()
        drop_database(database)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", default="sqlite3", choices=["sqlite3", "psycopg2"])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--queued", type=int, default=1000)
    args = parser.parse_args()
    result: dict[str, Any] = {}

    async def go() -> None:
        result.update(await run(args.engine, args.messages, args.queued))

    def start() -> None:
        d = defer.Deferred.fromCoroutine(go())
        d.addErrback(lambda failure: print(failure.getTraceback()))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
