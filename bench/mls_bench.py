"""MLS delivery in a group of 1,500, every member on Vignette's WebSocket stream.

    python -m bench.mls_bench                      # 1,500 members, SQLite
    python -m bench.mls_bench --engine postgres --members 1500 --commits 5 --messages 20

Reports, from the POST (or PUT) until every member's stream has it, p50/p99/max of:
- the commit adding all members (about 460 KB): until each joiner's stream has its Welcome note
  (joiners never process the commit that adds them), then until all have fetched the ~480 KB Welcome;
- ``--commits`` update commits in the 1,500-member group (every member gets each);
- ``--messages`` application messages (org.vignette.mls.message);
- for comparison, the Megolm way of rekeying the same devices: one /sendToDevice carrying a
  new room key (an Olm ciphertext of Olm's usual size) to each of the 1,500 devices.
Server CPU (utime+stime) per operation too. The members are 1,500 devices of one user
(each logged in with /login), the committer another user; one asyncio client process holds
every stream, so it shares the 2 CPUs with the server (its own CPU is reported).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import mls_rs_uniffi as mls
import yaml

from bench.client import MatrixClient, new_session, q
from bench.context import gather_limited
from bench.pollers import STREAM_PATH
from bench.process import cpu_ms
from bench.stats import latency_summary
from bench.targets import make_vignette

MLS = "/_matrix/client/unstable/org.vignette.mls"
KP = "org.vignette.mls.key_package"
PASSWORD = "bench password"
OLM_CIPHERTEXT_CHARS = 1100  # a pre-key Olm message carrying an m.room_key is about this long


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def mls_client(identity: str) -> mls.Client:
    keypair = mls.generate_signature_keypair(mls.CipherSuite.CURVE25519_AES128)
    return mls.Client(identity.encode(), keypair, mls.client_config_default())


class Member:
    """One device holding a WebSocket stream; records when each marker first reaches it."""

    def __init__(self, client: MatrixClient, room_id: str) -> None:
        self.client = client
        self.room_id = room_id
        self.since: str | None = None
        self.arrivals: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Event] = {}
        self.task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0

    def _saw(self, marker: str, at: float) -> None:
        if marker not in self.arrivals:
            self.arrivals[marker] = at

    def _frame(self, body: dict[str, Any], at: float) -> None:
        room = body.get("org.vignette.mls", {}).get("rooms", {}).get(self.room_id, {})
        for commit in room.get("commits", []):
            self._saw(f"commit:{commit['epoch']}", at)
        joined = body.get("rooms", {}).get("join", {}).get(self.room_id, {})
        for event in joined.get("timeline", {}).get("events", []):
            if event["type"] == "org.vignette.mls.message":
                self._saw(f"message:{event['content'].get('bench_seq')}", at)
        for event in body.get("to_device", {}).get("events", []):
            if event["type"] == "m.room.encrypted":
                self._saw(f"key:{event['content'].get('bench_seq')}", at)
            elif event["type"] == "org.vignette.mls.welcome":
                self._saw(f"welcome:{event['content']['epoch']}", at)

    async def run(self) -> None:
        """Hold the stream; if the server drops it, reconnect from the last acknowledged token."""
        while True:
            params = {"access_token": str(self.client.access_token)}
            if self.since:
                params["since"] = self.since
            try:
                async with self.client.session.ws_connect(self.client.base_url + STREAM_PATH, params=params,
                                                          heartbeat=None, max_msg_size=0) as ws:
                    self.connected.set()
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            continue
                        at = time.perf_counter()
                        frame = json.loads(message.data)
                        if frame.get("type") != "sync":
                            continue
                        self.since = frame["sync"]["next_batch"]
                        await ws.send_str(json.dumps({"type": "ack", "next_batch": self.since}))
                        self._frame(frame["sync"], at)
            except (aiohttp.ClientError, TimeoutError):
                pass
            self.reconnects += 1
            await asyncio.sleep(0.2)


async def wait_all(members: list[Member], marker: str, timeout_s: float = 60) -> None:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if all(marker in m.arrivals for m in members):
            return
        await asyncio.sleep(0.005)


def summary(members: list[Member], marker: str, started: float) -> dict[str, float]:
    latencies = [m.arrivals[marker] - started for m in members if marker in m.arrivals]
    result = latency_summary(latencies)
    result["missing"] = len(members) - len(latencies)
    return result


def client_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


async def setup(base_url: str, members: int) -> tuple[MatrixClient, Any, str, list[Member]]:
    session = new_session(connections=members + 50)
    alice = MatrixClient(session, base_url)
    await alice.request("POST", "/register", {"username": "alice", "password": PASSWORD,
                                              "auth": {"type": "m.login.dummy"}})
    crowd = MatrixClient(session, base_url)
    answer = await crowd.request("POST", "/register", {"username": "crowd", "password": PASSWORD,
                                                       "auth": {"type": "m.login.dummy"}})
    alice_login = await alice.request("POST", "/login", {"type": "m.login.password", "password": PASSWORD,
                                                         "identifier": {"type": "m.id.user", "user": "alice"}})
    alice.access_token, alice.user_id = alice_login["access_token"], alice_login["user_id"]
    alice.device_id = alice_login["device_id"]
    crowd.access_token, crowd.user_id = answer["access_token"], answer["user_id"]
    room_id = (await alice.request("POST", "/createRoom", {"preset": "private_chat", "initial_state": [
        {"type": "m.room.encryption", "state_key": "",
         "content": {"algorithm": "org.vignette.mls.v1", "cipher_suite": 1}}]}))["room_id"]
    await alice.request("POST", f"/rooms/{q(room_id)}/invite", {"user_id": crowd.user_id})
    await crowd.request("POST", f"/join/{q(room_id)}", {})

    async def device(_: int) -> Member:
        client = MatrixClient(session, base_url)
        login = await client.request("POST", "/login", {"type": "m.login.password", "password": PASSWORD,
                                                        "identifier": {"type": "m.id.user", "user": "crowd"}})
        client.access_token, client.user_id, client.device_id = (login["access_token"], login["user_id"],
                                                                 login["device_id"])
        kp = mls_client(f"{client.user_id}|{client.device_id}").generate_key_package_message().to_bytes()
        await client.request("POST", "/keys/upload", {"one_time_keys": {f"{KP}:1": b64(kp)}})
        member = Member(client, room_id)
        member.since = (await client.request("GET", "/sync", params={"timeout": "0"}))["next_batch"]
        return member

    crowd_members = await gather_limited([device(i) for i in range(members)], 16)
    group = mls_client(f"{alice.user_id}|{alice.device_id}").create_group(room_id.encode())
    return alice, group, room_id, crowd_members


async def connect(members: list[Member]) -> None:
    for member in members:
        member.task = asyncio.get_running_loop().create_task(member.run())
    await asyncio.gather(*(m.connected.wait() for m in members))


async def measure(pid: int, members: list[Member], marker: str, action: Any) -> dict[str, float]:
    server_before, client_before = cpu_ms(pid), client_cpu_ms()
    started = time.perf_counter()
    await action()
    await wait_all(members, marker)
    result = summary(members, marker, started)
    result["server_cpu_ms"] = round(cpu_ms(pid) - server_before, 1)
    result["client_cpu_ms"] = round(client_cpu_ms() - client_before, 1)
    await asyncio.sleep(0.3)
    return result


class Profiler:
    """``--profile DIR``: py-spy records the server during each measured phase, one raw file per phase."""

    def __init__(self, pid: int, directory: Path | None) -> None:
        self.pid = pid
        self.directory = directory

    async def around(self, phase: str, run: Any) -> Any:
        if self.directory is None:
            return await run()
        self.directory.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(self.pid),
                                "-r", "100", "-f", "raw", "-o", str(self.directory / f"{phase}.txt")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)  # py-spy attaches
        try:
            return await run()
        finally:
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait)


async def workload(base_url: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    profiler = Profiler(pid, args.profile)
    t0 = time.perf_counter()
    alice, group, room_id, members = await setup(base_url, args.members)
    setup_s = time.perf_counter() - t0
    claimed = await alice.request("POST", "/keys/claim", {"one_time_keys": {
        members[0].client.user_id: {m.client.device_id: KP for m in members}}})
    kps = [mls.Message.from_bytes(base64.b64decode(v + "=" * (-len(v) % 4)))
           for devices in claimed["one_time_keys"].values() for keys in devices.values() for v in keys.values()]
    results: dict[str, Any] = {"members": len(members), "setup_s": round(setup_s, 1)}

    async def post_commit(output: Any) -> None:
        body = {"commit": b64(output.commit_message.to_bytes())}
        if output.welcome_message is not None:
            body["welcome"] = b64(output.welcome_message.to_bytes())
        await alice.request("POST", f"{MLS}/rooms/{q(room_id)}/commit", body)
        await asyncio.to_thread(group.process_incoming_message, output.commit_message)

    # The big commit is made before the streams open: it blocks for seconds, and the
    # measurement is from its POST anyway.
    add_start = time.perf_counter()
    added = await asyncio.to_thread(group.add_members, kps)
    results["add_commit_bytes"] = len(added.commit_message.to_bytes())
    results["welcome_bytes"] = len(added.welcome_message.to_bytes())
    results["client_add_members_s"] = round(time.perf_counter() - add_start, 2)
    await connect(members)
    # The joiners do not process the commit that adds them: they get a Welcome note, then the Welcome.
    results["add_commit_welcome_note"] = await profiler.around(
        "add_commit", lambda: measure(pid, members, "welcome:0", lambda: post_commit(added)))

    async def fetch_welcomes() -> None:
        async def fetch(member: Member) -> None:
            await member.client.request("GET", f"{MLS}/rooms/{q(room_id)}/welcome/0")
            member._saw("welcome_fetched", time.perf_counter())

        await gather_limited([fetch(m) for m in members], 32)

    results["welcome_fetch_all"] = await measure(pid, members, "welcome_fetched", fetch_welcomes)

    async def update_commits() -> list[dict[str, float]]:
        updates = []
        for epoch in range(1, args.commits + 1):
            output = await asyncio.to_thread(group.commit)
            results.setdefault("update_commit_bytes", len(output.commit_message.to_bytes()))
            updates.append(await measure(pid, members, f"commit:{epoch}", lambda o=output: post_commit(o)))
        return updates

    results["update_commits"] = merge(await profiler.around("update_commits", update_commits))

    async def application_messages() -> list[dict[str, float]]:
        messages = []
        for seq in range(args.messages):
            ciphertext = b64(group.encrypt_application_message(secrets.token_bytes(64)).to_bytes())

            async def send(seq: int = seq, ciphertext: str = ciphertext) -> None:
                await alice.request("PUT", f"/rooms/{q(room_id)}/send/org.vignette.mls.message/m{seq}",
                                    {"message": ciphertext, "bench_seq": str(seq)})

            messages.append(await measure(pid, members, f"message:{seq}", send))
        return messages

    results["messages"] = merge(await profiler.around("messages", application_messages))

    rekeys = []
    for seq in range(args.commits):
        payload = {m.client.device_id: {"algorithm": "m.olm.v1.curve25519-aes-sha2", "bench_seq": str(seq),
                                        "sender_key": secrets.token_urlsafe(32),
                                        "ciphertext": {"k": {"type": 0, "body": secrets.token_urlsafe(
                                            OLM_CIPHERTEXT_CHARS * 3 // 4)}}}
                   for m in members}

        async def rekey(seq: int = seq, payload: dict[str, Any] = payload) -> None:
            await alice.request("PUT", f"/sendToDevice/m.room.encrypted/rk{seq}",
                                {"messages": {members[0].client.user_id: payload}})

        rekeys.append(await measure(pid, members, f"key:{seq}", rekey))
    results["megolm_rekey_to_device"] = merge(rekeys)
    results["stream_reconnects"] = sum(m.reconnects for m in members)
    for member in members:
        if member.task is not None:
            member.task.cancel()
    await members[0].client.session.close()
    return results


def merge(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each run's figures, averaged over the runs (p99 and max: the worst run)."""
    if not runs:
        return {}
    merged: dict[str, float] = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        merged[key] = max(values) if key in ("p99_ms", "max_ms", "missing") else round(sum(values) / len(values), 1)
    merged["runs"] = len(runs)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1500)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--profile", type=Path, help="py-spy the server during the update commits and the "
                        "messages, raw (collapsed) stacks into this directory")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="mls-bench-"))
    target = make_vignette(args.engine, directory, "WARNING")
    config = yaml.safe_load(target.config_path.read_text())
    config.update({"max_group_size": args.members + 1, "bcrypt_rounds": 4})
    target.config_path.write_text(yaml.safe_dump(config))
    target.start()
    try:
        results = asyncio.run(workload(target.base_url, target.pid, args))
    finally:
        target.stop()
    print(json.dumps({"engine": args.engine, **results}, indent=2))


if __name__ == "__main__":
    main()
