"""Real mls-rs clients (agentvault-mls-rs-uniffi) for the MLS tests."""

from __future__ import annotations

import base64

import mls_rs_uniffi as mls


def new_client(identity: str) -> mls.Client:
    keypair = mls.generate_signature_keypair(mls.CipherSuite.CURVE25519_AES128)
    return mls.Client(identity.encode(), keypair, mls.client_config_default())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def message(data: bytes) -> mls.Message:
    return mls.Message.from_bytes(data)
