"""A server split into the worker kinds of homeserver/worker_roles.py, on the federation test
network (docs/workers.md): main (client writes; federation writes forwarded to it), a
federation sender, a federation reader holding the TLS federation listener the server name
points at, a media worker, and a background-jobs worker.

The server is named ``localhost:<reader's federation port>``, so a Synapse peer (which uses no
DNS server of ours) reaches the reader through /etc/hosts.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.support.client import Client
from tests.support.federation import FederationNet
from tests.support.federation_rooms import sync_until, timeline_bodies
from tests.support.server import free_port
from tests.support.workers import ProcessSet, WorkerProcess, started, write_process_set

SENDER, READER, MEDIA, BACKGROUND = "sender1", "fedreader1", "media1", "background1"


def add_listener(worker: WorkerProcess, listener: dict[str, Any]) -> None:
    config = yaml.safe_load(worker.config_path.read_text())
    config["listeners"].append(listener)
    worker.config_path.write_text(yaml.safe_dump(config))


def set_keys(worker: WorkerProcess, **keys: Any) -> None:
    config = yaml.safe_load(worker.config_path.read_text())
    config.update(keys)
    worker.config_path.write_text(yaml.safe_dump(config))


def federation_port(processes: ProcessSet) -> int:
    config = yaml.safe_load(processes.workers[READER].config_path.read_text())
    return int(next(item["port"] for item in config["listeners"] if item.get("tls")))


def start_split_server(directory: Path, net: FederationNet, sender: str = SENDER, **shared: Any) -> ProcessSet:
    """Main plus the four worker kinds, all started (main first)."""
    return started(write_split_server(directory, net, sender, **shared))


def write_split_server(directory: Path, net: FederationNet, sender: str = SENDER, **shared: Any) -> ProcessSet:
    """The config files (and database) of main plus the four worker kinds, not started;
    ``sender`` (the sender worker, or ``main``) sends federation."""
    port = free_port()
    server_name = f"localhost:{port}"
    # The background worker's delayed events go to the event writer over the instance_map.
    shared.setdefault("worker_replication_secret", secrets.token_hex(16))
    fed = net.federation_config(server_name, port, ["localhost"])
    for key in ("server_name", "listeners"):
        fed.pop(key)
    fed["ip_range_whitelist"] = ["127.0.0.1/32", "::1/128"]
    processes = write_process_set(
        directory,
        [SENDER, READER, MEDIA, BACKGROUND],
        server_name=server_name,
        main_resources=["client", "health", "federation", "metrics"],
        federation_sender_instances=[sender],
        enable_media_repo=False,
        run_background_tasks_on=BACKGROUND,
        enable_metrics=True,
        **fed,
        **shared,
    )
    set_keys(processes.workers[READER], listeners=[{
        "port": processes.workers[READER].port, "bind_addresses": ["127.0.0.1"], "type": "http",
        "resources": [{"names": ["health", "metrics"]}]}])
    add_listener(processes.workers[READER], {
        "port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
        "resources": [{"names": ["federation", "keys"]}]})
    set_keys(processes.workers[SENDER], listeners=[{
        "port": processes.workers[SENDER].port, "bind_addresses": ["127.0.0.1"], "type": "http",
        "resources": [{"names": ["health", "metrics"]}]}])
    set_keys(processes.workers[MEDIA], enable_media_repo=True, listeners=[{
        "port": processes.workers[MEDIA].port, "bind_addresses": ["127.0.0.1"], "type": "http",
        "resources": [{"names": ["client", "media", "health"]}]}])
    return processes


def metric(base_url: str, prefix: str) -> float:
    """The sum of the samples whose line starts with ``prefix`` (name and some labels)."""
    text = requests.get(base_url + "/_synapse/metrics", timeout=30).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def sent_transactions(base_url: str) -> float:
    return metric(base_url, "synapse_federation_client_sent_transactions_total")


def see(reader: Client, room_id: str, texts: list[str], since: str) -> None:
    """``reader`` sees every text of ``texts`` in this order, each once."""
    seen: list[str] = []

    def has_all(body: dict[str, Any]) -> bool:
        seen.extend(t for t in timeline_bodies(body, room_id) if t in texts)
        return all(t in seen for t in texts)

    sync_until(reader, has_all, since, attempts=60)
    assert seen == texts
