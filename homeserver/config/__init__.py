"""Loading and validating homeserver.yaml."""

from __future__ import annotations

import attrs
import yaml

from homeserver.config.loader import ConfigError, build
from homeserver.config.schema import HomeserverConfig
from homeserver.config.synapse_keys import fold_legacy_keys
from homeserver.config.workers import check_worker_rules
from homeserver.signing_key import SigningKeyError, read_signing_keys

__all__ = ["ConfigError", "HomeserverConfig", "load_config", "parse_config"]


def parse_config(data: object, warnings: list[str] | None = None) -> HomeserverConfig:
    """Validate an already-parsed YAML document, including cross-key rules.

    Synapse keys Vignette does not implement add one line each to ``warnings``.
    """
    if not isinstance(data, dict):
        raise ConfigError("", "the config file must be a YAML mapping of keys to values")
    config = build(HomeserverConfig, fold_legacy_keys(data), warnings=warnings)
    check_cross_key_rules(config)
    return config


def check_cross_key_rules(config: HomeserverConfig) -> None:
    for index, listener in enumerate(config.listeners):
        if listener.tls and not (config.tls_certificate_path and config.tls_private_key_path):
            raise ConfigError(
                f"listeners[{index}].tls",
                "a TLS listener needs tls_certificate_path and tls_private_key_path to be set",
            )
    if (config.auto_join_rooms and config.autocreate_auto_join_rooms
            and config.autocreate_auto_join_room_preset != "public_chat"
            and not config.auto_join_mxid_localpart):
        raise ConfigError(
            "autocreate_auto_join_room_preset",
            "a private preset needs auto_join_mxid_localpart, the user who creates the rooms and invites",
        )
    for index, notary in enumerate(config.trusted_key_servers):
        if not notary.verify_keys and not notary.accept_keys_insecurely and not config.federation_verify_certificates:
            raise ConfigError(
                f"trusted_key_servers[{index}]",
                "without verify_keys this notary is trusted only through TLS, which "
                "federation_verify_certificates: false turns off (set verify_keys, or accept_keys_insecurely: true)",
            )
    if config.federation_custom_ca_list is not None and not config.federation_custom_ca_list:
        raise ConfigError("federation_custom_ca_list", "expected at least one CA file, or leave it unset")
    if config.url_preview_enabled and config.url_preview_ip_range_blacklist is None:
        raise ConfigError(
            "url_preview_ip_range_blacklist",
            "url_preview_enabled is true, so this must list the IP ranges previews may never fetch from"
            " (for example the private ranges in ip_range_blacklist)",
        )
    if config.turn_shared_secret and config.turn_shared_secret_path:
        raise ConfigError("turn_shared_secret_path",
                          "set either turn_shared_secret or turn_shared_secret_path, not both")
    check_worker_rules(config)


def load_config(path: str | list[str], warnings: list[str] | None = None) -> HomeserverConfig:
    """Read, validate and check the files a config points at.

    Several paths (``-c shared.yaml -c worker.yaml``, as Synapse's workers are run) are
    merged key by key at the top level, later files winning."""
    paths = [path] if isinstance(path, str) else path
    data = _read_yaml(paths[0])
    for extra_path in paths[1:]:
        extra = _read_yaml(extra_path)
        if not isinstance(data, dict) or not isinstance(extra, dict):
            raise ConfigError("", f"{extra_path}: each config file must be a YAML mapping of keys to values")
        data = {**data, **extra}
    return _checked(parse_config(data, warnings))


def _read_yaml(path: str) -> object:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError("", f"config file {path} does not exist (create one with --generate-config)") from None
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"{path} is not valid YAML{where}") from None
    return data


def _checked(config: HomeserverConfig) -> HomeserverConfig:
    try:
        read_signing_keys(config.signing_key_path)
    except SigningKeyError as exc:
        raise ConfigError("signing_key_path", str(exc)) from None
    for key in ("tls_certificate_path", "tls_private_key_path"):
        file_path = getattr(config, key)
        if file_path is not None and any(listener.tls for listener in config.listeners):
            try:
                with open(file_path, "rb"):
                    pass
            except OSError as exc:
                raise ConfigError(key, f"cannot read {file_path}: {exc.strerror}") from None
    for index, ca_path in enumerate(config.federation_custom_ca_list or []):
        problem = _pem_certificate_problem(ca_path)
        if problem:
            raise ConfigError(f"federation_custom_ca_list[{index}]", problem)
    if config.turn_shared_secret_path:
        config = attrs.evolve(config, turn_shared_secret=_read_secret(config.turn_shared_secret_path))
    return config


def _read_secret(path: str) -> str:
    """A secret kept in its own file (Synapse's ``*_path`` keys): its text, trimmed."""
    try:
        with open(path, encoding="utf-8") as handle:
            secret = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError("turn_shared_secret_path", f"cannot read {path}: {reason}") from None
    if not secret:
        raise ConfigError("turn_shared_secret_path", f"{path} is empty")
    return secret


def _pem_certificate_problem(path: str) -> str | None:
    from cryptography import x509

    try:
        with open(path, "rb") as handle:
            x509.load_pem_x509_certificates(handle.read())
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    except ValueError:
        return f"{path} holds no PEM certificate"
    return None
