"""Helpers for E2EE black-box tests: real ed25519 keys and correctly signed key objects."""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

import attrs
import nacl.signing
import psycopg2

from homeserver.events.signing import sign_json
from homeserver.events.unpadded_base64 import encode_base64
from tests.support.client import Client
from tests.support.server import RunningServer

ALGORITHMS = ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"]


@attrs.define
class Ed25519:
    signing_key: nacl.signing.SigningKey = attrs.field(factory=nacl.signing.SigningKey.generate)

    @property
    def public(self) -> str:
        return encode_base64(bytes(self.signing_key.verify_key))

    def sign(self, obj: dict[str, Any], user_id: str, key_id: str) -> dict[str, Any]:
        return sign_json(obj, user_id, key_id, self.signing_key)


def random_curve_key() -> str:
    return encode_base64(secrets.token_bytes(32))


def device_keys_for(client: Client, identity: Ed25519) -> dict[str, Any]:
    assert client.user_id and client.device_id
    keys = {
        "user_id": client.user_id,
        "device_id": client.device_id,
        "algorithms": ALGORITHMS,
        "keys": {f"curve25519:{client.device_id}": random_curve_key(),
                 f"ed25519:{client.device_id}": identity.public},
    }
    return identity.sign(keys, client.user_id, f"ed25519:{client.device_id}")


def one_time_keys(client: Client, identity: Ed25519, count: int, prefix: str = "k",
                  algorithm: str = "signed_curve25519") -> dict[str, Any]:
    assert client.user_id and client.device_id
    keys = {}
    for index in range(count):
        key = identity.sign({"key": random_curve_key()}, client.user_id, f"ed25519:{client.device_id}")
        keys[f"{algorithm}:{prefix}{index:05d}"] = key
    return keys


def upload_keys(client: Client, **body: Any) -> Any:
    response = client.post("/_matrix/client/v3/keys/upload", body)
    assert response.status == 200, response
    return response.body


def setup_device(client: Client, otk_count: int = 0) -> Ed25519:
    """Upload signed device keys (and some one-time keys) for the client's device."""
    identity = Ed25519()
    body: dict[str, Any] = {"device_keys": device_keys_for(client, identity)}
    if otk_count:
        body["one_time_keys"] = one_time_keys(client, identity, otk_count)
    upload_keys(client, **body)
    return identity


def cross_signing_key(user_id: str, usage: str, key: Ed25519, signer: Ed25519 | None = None) -> dict[str, Any]:
    obj = {"user_id": user_id, "usage": [usage], "keys": {f"ed25519:{key.public}": key.public}}
    if signer is not None:
        obj = signer.sign(obj, user_id, f"ed25519:{signer.public}")
    return obj


def claim(client: Client, user_id: str, device_id: str, algorithm: str = "signed_curve25519") -> dict[str, Any]:
    response = client.post("/_matrix/client/v3/keys/claim",
                           {"one_time_keys": {user_id: {device_id: algorithm}}})
    assert response.status == 200, response
    return response.body["one_time_keys"].get(user_id, {}).get(device_id, {})


def _connect(server: RunningServer) -> tuple[Any, str]:
    database = server.config["database"]
    args = database["args"]
    if database["name"] == "sqlite3":
        return sqlite3.connect(args["database"]), "?"
    return psycopg2.connect(host=args["host"], port=args["port"], user=args["user"],
                            dbname=args["database"]), "%s"


def database_rows(server: RunningServer, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the test server's database directly (``?`` placeholders), to check what is stored."""
    conn, placeholder = _connect(server)
    try:
        cursor = conn.cursor()
        cursor.execute(sql.replace("?", placeholder), args)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        conn.close()


def database_write(server: RunningServer, sql: str, *args: Any) -> int:
    """Change the test server's database directly (``?`` placeholders), as an older version
    might have left it; returns the number of rows changed."""
    conn, placeholder = _connect(server)
    try:
        cursor = conn.cursor()
        cursor.execute(sql.replace("?", placeholder), args)
        conn.commit()
        return cursor.rowcount
    finally:
        conn.close()


def database_text(server: RunningServer) -> str:
    """Every row of every table, as text, for grepping."""
    if server.config["database"]["name"] == "sqlite3":
        tables_sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        tables_sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    tables = [row[0] for row in database_rows(server, tables_sql)]
    return "\n".join(repr(row) for table in tables for row in database_rows(server, f'SELECT * FROM "{table}"'))
