"""Writing a new homeserver.yaml, signing key and self-signed federation certificate."""

from __future__ import annotations

import datetime
import os
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from homeserver.signing_key import write_new_signing_key

CONFIG_TEMPLATE = """\
# Vignette homeserver configuration, generated for {server_name}.
# Every key is documented in config.sample.yaml in the Vignette source.

server_name: "{server_name}"
pid_file: "{data_dir}/homeserver.pid"

listeners:
  # Clients (and reverse proxies) talk to this one.
  - port: 8008
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client, health]
  # Other homeservers talk to this one, over TLS.
  - port: 8448
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: true
    resources:
      - names: [federation, keys]

database:
  name: sqlite3
  args:
    database: "{data_dir}/homeserver.db"

logging:
  format: text
  level: INFO

signing_key_path: "{data_dir}/{server_name_file}.signing.key"
tls_certificate_path: "{data_dir}/{server_name_file}.tls.crt"
tls_private_key_path: "{data_dir}/{server_name_file}.tls.key"

media_store_path: "{data_dir}/media_store"

enable_registration: false
registration_shared_secret: "{shared_secret}"

default_room_version: "12"
max_group_size: 1500
to_device_retention: 30d

presence:
  enabled: false
"""


def _file_safe(server_name: str) -> str:
    return server_name.replace(":", "_").replace("[", "").replace("]", "")


def write_self_signed_certificate(cert_path: str, key_path: str, server_name: str) -> bool:
    """Make a self-signed certificate for the federation listener unless one exists."""
    if os.path.exists(cert_path) or os.path.exists(key_path):
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    host = server_name.rsplit(":", 1)[0] if not server_name.startswith("[") else server_name
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(cert_path, "wb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    return True


def generate_config(config_path: str, server_name: str, data_dir: str) -> list[str]:
    """Write whatever is missing; return a line per file written or kept."""
    data_dir = os.path.abspath(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    messages = []
    name = _file_safe(server_name)
    if os.path.exists(config_path):
        messages.append(f"Config file {config_path} already exists; not overwriting it.")
    else:
        text = CONFIG_TEMPLATE.format(
            server_name=server_name, data_dir=data_dir, server_name_file=name,
            shared_secret=secrets.token_urlsafe(32),
        )
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        messages.append(f"Wrote config to {config_path}.")
    key_path = os.path.join(data_dir, f"{name}.signing.key")
    if write_new_signing_key(key_path):
        messages.append(f"Wrote signing key to {key_path}.")
    else:
        messages.append(f"Signing key {key_path} already exists; kept it.")
    cert_path = os.path.join(data_dir, f"{name}.tls.crt")
    if write_self_signed_certificate(cert_path, os.path.join(data_dir, f"{name}.tls.key"), server_name):
        messages.append(f"Wrote a self-signed TLS certificate to {cert_path}.")
    return messages
