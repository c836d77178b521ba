"""Ed25519 signing and verification of JSON objects and events (pure: keys are passed in).

Key lookup, key fetching and key validity windows belong to the federation layer; it hands
this module a `{server_name: {key_id: VerifyKey}}` mapping of the keys it trusts for the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.signing

from homeserver.events.canonical_json import encode_canonical_json
from homeserver.events.hashing import add_content_hash
from homeserver.events.identifiers import server_name_of
from homeserver.events.redaction import redact_pdu
from homeserver.events.room_versions import RoomVersion
from homeserver.events.unpadded_base64 import decode_base64, encode_base64

VerifyKeys = Mapping[str, Mapping[str, nacl.signing.VerifyKey]]

SUPPORTED_ALGORITHM = "ed25519"


class SignatureError(Exception):
    """A required signature is missing or does not verify; the message says whose."""


def _signing_bytes(obj: Mapping[str, Any]) -> bytes:
    return encode_canonical_json(
        {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    )


def sign_json(
    obj: Mapping[str, Any], server_name: str, key_id: str, signing_key: nacl.signing.SigningKey
) -> dict[str, Any]:
    """Return a copy of `obj` with this server's signature added under `signatures`.

    Existing signatures (ours under other key IDs, or other servers') are kept.
    """
    signature = signing_key.sign(_signing_bytes(obj)).signature
    signed = dict(obj)
    signatures = {name: dict(sigs) for name, sigs in obj.get("signatures", {}).items()}
    signatures.setdefault(server_name, {})[key_id] = encode_base64(signature)
    signed["signatures"] = signatures
    return signed


def verify_json_signature(
    obj: Mapping[str, Any], server_name: str, verify_keys: Mapping[str, nacl.signing.VerifyKey]
) -> None:
    """Check that `server_name` signed `obj` with one of `verify_keys` (key_id -> VerifyKey).

    Follows the spec's "Checking for a signature": signatures under unknown algorithms or
    unknown keys are skipped; at least one known key must have signed, and every known
    key's signature must verify. Raises SignatureError.
    """
    signatures = obj.get("signatures")
    if not isinstance(signatures, Mapping) or not isinstance(signatures.get(server_name), Mapping):
        raise SignatureError(f"no signatures from {server_name}")
    checked = 0
    message: bytes | None = None
    for key_id, signature_b64 in signatures[server_name].items():
        if not isinstance(key_id, str) or key_id.split(":", 1)[0] != SUPPORTED_ALGORITHM:
            continue
        verify_key = verify_keys.get(key_id)
        if verify_key is None:
            continue
        if not isinstance(signature_b64, str):
            raise SignatureError(f"malformed signature {key_id} from {server_name}")
        try:
            signature = decode_base64(signature_b64)
        except ValueError as e:
            raise SignatureError(f"undecodable signature {key_id} from {server_name}") from e
        if message is None:
            message = _signing_bytes(obj)
        try:
            verify_key.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError) as e:
            raise SignatureError(f"bad signature {key_id} from {server_name}") from e
        checked += 1
    if checked == 0:
        raise SignatureError(f"no signature from {server_name} with a known key")


def required_signers(pdu: Mapping[str, Any], room_version: RoomVersion) -> set[str]:
    """The servers whose signatures an event must carry.

    Always the sender's server; in v1/v2 also the event ID's server; and from v8,
    on membership events carrying `join_authorised_via_users_server`, that user's server
    (auth rule "if content has join_authorised_via_users_server ... validly signed").
    Raises ValueError if an identifier involved has no server name.
    """
    servers = {server_name_of(pdu.get("sender", ""))}
    if room_version.event_id_server_must_sign:
        event_id = pdu.get("event_id")
        if isinstance(event_id, str):
            servers.add(server_name_of(event_id))
    if room_version.restricted_join_rule and pdu.get("type") == "m.room.member":
        content = pdu.get("content")
        if isinstance(content, Mapping):
            authoriser = content.get("join_authorised_via_users_server")
            if isinstance(authoriser, str):
                servers.add(server_name_of(authoriser))
    return servers


def verify_event_signatures(
    pdu: Mapping[str, Any], room_version: RoomVersion, verify_keys: VerifyKeys
) -> None:
    """Check every required server's signature on the redacted form of the event.

    Works whether the PDU is the full event or an already-redacted copy.
    Raises SignatureError naming the first server whose check fails.
    """
    redacted = redact_pdu(dict(pdu), room_version)
    try:
        servers = required_signers(pdu, room_version)
    except ValueError as e:
        raise SignatureError(str(e)) from e
    for server_name in sorted(servers):
        verify_json_signature(redacted, server_name, verify_keys.get(server_name, {}))


def sign_event(
    pdu: Mapping[str, Any],
    room_version: RoomVersion,
    server_name: str,
    key_id: str,
    signing_key: nacl.signing.SigningKey,
) -> dict[str, Any]:
    """Add the content hash and this server's signature (over the redacted form) to a PDU."""
    hashed = add_content_hash(dict(pdu))
    redacted = redact_pdu(hashed, room_version)
    signed_redacted = sign_json(redacted, server_name, key_id, signing_key)
    hashed["signatures"] = signed_redacted["signatures"]
    return hashed


#: v5+: a key's advertised validity is capped at this far into the future.
MAX_KEY_VALIDITY_MS = 7 * 24 * 60 * 60 * 1000


def key_usable_for_event(
    valid_until_ts: int, origin_server_ts: int, room_version: RoomVersion, now_ms: int
) -> bool:
    """Whether a server key with this `valid_until_ts` may verify an event (v5+ rule).

    The lesser of `valid_until_ts` and now + 7 days must be at least the event's
    `origin_server_ts`. Before v5 key validity is not enforced. `now_ms` is passed in
    so the kernel stays free of clocks.
    """
    if not room_version.enforce_key_validity:
        return True
    return min(valid_until_ts, now_ms + MAX_KEY_VALIDITY_MS) >= origin_server_ts
