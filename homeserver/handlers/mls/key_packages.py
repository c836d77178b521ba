"""KeyPackages as one-time keys (and a last-resort one as the fallback key) of the e2ee key stores.

An upload is refused (400 M_INVALID_PARAM) unless each KeyPackage parses, uses a
ciphersuite the server can compute references for, and names the uploading
device (``<user_id>|<device_id>``) in its basic credential. When one is handed
out by /keys/claim its KeyPackageRef is recorded, in the claim's transaction, so
that a later Welcome can be routed to the device it was encrypted for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeserver.errors import bad_json, invalid_param
from homeserver.handlers.mls.common import (
    KEY_PACKAGE_ALGORITHM,
    SUPPORTED_SUITES,
    decode_b64,
    identity_of,
)
from homeserver.mls import wire
from storage.engine import Transaction
from storage.stores.e2e_one_time_keys import ClaimedKey, OneTimeKey
from storage.stores.mls import MlsStore

#: A KeyPackage is a few hundred bytes; this leaves room for extensions and x509 chains.
MAX_KEY_PACKAGE_SIZE = 16 * 1024


def check_uploaded_key_packages(user_id: str, device_id: str, keys: Iterable[OneTimeKey]) -> None:
    for key in keys:
        if key.algorithm != KEY_PACKAGE_ALGORITHM:
            continue
        if not isinstance(key.key, str):
            raise bad_json(f"{key.algorithm}:{key.key_id} must be the base64 of an MLS KeyPackage message")
        data = decode_b64(key.key, f"{key.algorithm}:{key.key_id}", MAX_KEY_PACKAGE_SIZE)
        try:
            key_package = wire.parse_key_package(data)
        except wire.WireError as exc:
            raise invalid_param(f"{key.key_id} is not an MLS KeyPackage: {exc}") from None
        if key_package.cipher_suite not in SUPPORTED_SUITES:
            raise invalid_param(f"KeyPackage {key.key_id} uses unsupported ciphersuite {key_package.cipher_suite}")
        if key_package.leaf.credential_type != wire.CREDENTIAL_BASIC or \
                key_package.identity != identity_of(user_id, device_id):
            raise invalid_param(f"KeyPackage {key.key_id}'s credential identity must be {user_id}|{device_id}")


def ref_of(key: str) -> str:
    """The hex KeyPackageRef of a stored (already checked) KeyPackage."""
    return wire.parse_key_package(decode_b64(key, "key package", MAX_KEY_PACKAGE_SIZE)).ref().hex()


def claim_recorder(now_ms: int) -> Callable[[Transaction, list[ClaimedKey]], None]:
    """Records the refs of the KeyPackages among a claim's keys, inside the claim's transaction."""

    def record(txn: Transaction, claimed: list[ClaimedKey]) -> None:
        rows = [(ref_of(key.key), key.user_id, key.device_id) for key in claimed
                if key.algorithm == KEY_PACKAGE_ALGORITHM and isinstance(key.key, str)]
        if rows:
            MlsStore.record_refs_txn(txn, rows, now_ms)

    return record
