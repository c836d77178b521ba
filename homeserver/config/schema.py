"""The shape of homeserver.yaml.

Keys take Synapse's names where the concept is the same, so operators can
carry their knowledge (and much of their config) across.  Every key here is
documented in config.sample.yaml; a test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

import attrs

from homeserver.config.loader import ByteSize, Duration, field
from homeserver.config.ratelimits import (
    FederationRateLimits,
    InviteRateLimits,
    JoinRateLimits,
    LoginRateLimits,
    PresenceRateLimits,
    RateLimit,
    bucket,
)
from homeserver.config.retention import RETENTION_CHECK, RetentionSection
from homeserver.config.rooms import (
    DirectoryRule,
    LimitRemoteRooms,
    ServerNoticesSection,
    UserDirectorySection,
    alias_list_problem,
    mime_type_list_problem,
)
from homeserver.config.workers import (
    InstanceLocation,
    _federation_senders,
    _stream_writers,
    _worker_app,
)

__all__ = ["HomeserverConfig", "RateLimit"]

KNOWN_RESOURCES = ("client", "federation", "keys", "metrics", "media", "health", "openid")
SUPPORTED_ROOM_VERSIONS = tuple(str(v) for v in range(1, 13))


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "expected a port number from 0 to 65535"


def _positive(value: float) -> str | None:
    return None if value > 0 else "expected a number greater than zero"


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else "expected a number of zero or more"


def _three_counts(values: list[int]) -> str | None:
    return None if len(values) == 3 and all(v > 0 for v in values) else \
        "expected three numbers greater than zero, for generations 0, 1 and 2"


def _three_intervals(values: list[Duration]) -> str | None:
    return None if len(values) == 3 else "expected three durations, for generations 0, 1 and 2"


def _server_name(value: str) -> str | None:
    from homeserver.config.names import server_name_problem

    return server_name_problem(value)


def _bcrypt_rounds(value: int) -> str | None:
    return None if 4 <= value <= 31 else "expected a bcrypt cost from 4 to 31"


def _cidr_list(values: list[str]) -> str | None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"expected IP ranges in CIDR form such as 10.0.0.0/8, got {value!r}"
    return None


def _bind_addresses(values: list[str]) -> str | None:
    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return f"expected IP addresses such as 127.0.0.1 or ::, got {value!r}"
    return None


def _room_version(value: str) -> str | None:
    if value in SUPPORTED_ROOM_VERSIONS:
        return None
    return f"expected a room version from 1 to 12 as a string, got {value!r}"


def _resource_names(values: list[str]) -> str | None:
    for value in values:
        if value not in KNOWN_RESOURCES:
            return f"expected resource names from {', '.join(KNOWN_RESOURCES)}, got {value!r}"
    return None


@attrs.frozen(kw_only=True)
class ListenerResource:
    names: list[str] = field(check=_resource_names)
    compress: bool = field(False)


@attrs.frozen(kw_only=True)
class Listener:
    port: int = field(check=_port, expected="a port number from 0 to 65535")
    bind_addresses: list[str] = field(factory=lambda: ["127.0.0.1"], check=_bind_addresses)
    type: Literal["http"] = field("http")
    tls: bool = field(False)
    x_forwarded: bool = field(False)
    resources: list[ListenerResource] = field(factory=list)

    def serves(self, name: str) -> bool:
        return any(name in resource.names for resource in self.resources)


@attrs.frozen(kw_only=True)
class DatabaseSection:
    name: Literal["sqlite3", "psycopg2"] = field("sqlite3")
    args: dict[str, Any] = field(factory=dict)


@attrs.frozen(kw_only=True)
class RedisSection:
    enabled: bool = field(False)
    host: str = field("localhost")
    port: int = field(6379, check=_port)
    password: str | None = field(None)
    dbid: int = field(0, check=_non_negative)


def _verify_key_map(values: dict[str, str]) -> str | None:
    from homeserver.config.names import key_id_problem, public_key_problem

    for key_id, key in values.items():
        problem = key_id_problem(key_id) or public_key_problem(key)
        if problem:
            return f"{key_id}: {problem}"
    return None


def _dns_servers(values: list[str]) -> str | None:
    from homeserver.config.names import dns_server_problem

    for value in values:
        problem = dns_server_problem(value)
        if problem:
            return problem
    return None


def _server_names(values: list[str]) -> str | None:
    for value in values:
        problem = _server_name(value)
        if problem:
            return problem
    return None


def _old_signing_keys(values: dict[str, Any]) -> str | None:
    return _verify_key_map({key_id: old.key for key_id, old in values.items()})


@attrs.frozen(kw_only=True)
class TrustedKeyServer:
    server_name: str = field(check=_server_name)
    verify_keys: dict[str, str] | None = field(None, check=_verify_key_map)
    accept_keys_insecurely: bool = field(False)


@attrs.frozen(kw_only=True)
class OldSigningKey:
    """A public key this server used to sign with, and when it stopped (Synapse's shape)."""

    key: str = field()
    expired_ts: int = field(check=_non_negative)


def _multiplier(value: float) -> str | None:
    return None if value >= 1 else "must be at least 1"


@attrs.frozen(kw_only=True)
class FederationSection:
    """Synapse's ``federation`` section: the backoff of the transaction sender per destination.

    After a first failure a destination is retried after ``destination_min_retry_interval``;
    each further failure multiplies the wait by ``destination_retry_multiplier`` (with
    jitter), up to ``destination_max_retry_interval``.
    """

    destination_min_retry_interval: Duration = field(Duration(600_000), check=_positive)
    destination_max_retry_interval: Duration = field(Duration(86_400_000), check=_positive)
    destination_retry_multiplier: float = field(2.0, check=_multiplier, expected="a number, at least 1")


@attrs.frozen(kw_only=True)
class PresenceSection:
    enabled: bool = field(False)


@attrs.frozen(kw_only=True)
class LoginViaExistingSession:
    """MSC3882 ``/login/get_token``: a signed-in device mints a one-use token to sign in another
    (Synapse's key and defaults: off, user-interactive auth required, tokens live 5 minutes)."""

    enabled: bool = field(False)
    require_ui_auth: bool = field(True)
    token_timeout: Duration = field(Duration(5 * 60_000), check=_positive)


@attrs.frozen(kw_only=True)
class LoggingSection:
    format: Literal["text", "json"] = field("text")
    file: str | None = field(None)
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = field("INFO")


@attrs.frozen(kw_only=True)
class ThumbnailSize:
    """One pre-set thumbnail: a box and how to fit the image into it."""

    width: int = field(check=_positive, expected="a width in pixels greater than zero")
    height: int = field(check=_positive, expected="a height in pixels greater than zero")
    method: Literal["crop", "scale"] = field("scale")


DEFAULT_THUMBNAIL_SIZES = (
    (32, 32, "crop"), (96, 96, "crop"), (320, 240, "scale"), (640, 480, "scale"), (800, 600, "scale"),
)


@attrs.frozen(kw_only=True)
class MediaUploadLimit:
    """At most ``max_size`` bytes uploaded by one user within any ``time_period``."""

    time_period: Duration = field()
    max_size: ByteSize = field()


DEFAULT_IP_RANGE_BLACKLIST = [
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
    "192.0.0.0/24", "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "0.0.0.0/8", "255.255.255.255/32",
    "::1/128", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10", "::/128",
]  # fmt: skip


@attrs.frozen(kw_only=True)
class HomeserverConfig:
    """The whole of homeserver.yaml."""

    server_name: str = field(check=_server_name)
    public_baseurl: str | None = field(None)
    serve_server_wellknown: bool = field(False)
    listeners: list[Listener] = field(factory=list)
    pid_file: str | None = field(None)
    log_config: str | None = field(None)
    logging: LoggingSection = field(factory=LoggingSection)

    database: DatabaseSection = field(factory=DatabaseSection)
    redis: RedisSection = field(factory=RedisSection)

    signing_key_path: str = field()
    tls_certificate_path: str | None = field(None)
    tls_private_key_path: str | None = field(None)

    enable_registration: bool = field(False)
    bcrypt_rounds: int = field(12, check=_bcrypt_rounds)
    enable_registration_without_verification: bool = field(False)
    registration_shared_secret: str | None = field(None)
    registration_requires_token: bool = field(False)
    allow_guest_access: bool = field(False)
    login_via_existing_session: LoginViaExistingSession = field(factory=LoginViaExistingSession)

    auto_join_rooms: list[str] = field(factory=list, check=alias_list_problem)
    autocreate_auto_join_rooms: bool = field(True)
    autocreate_auto_join_rooms_federated: bool = field(True)
    autocreate_auto_join_room_preset: Literal["public_chat", "private_chat", "trusted_private_chat"] = field(
        "public_chat")
    auto_join_mxid_localpart: str | None = field(None)
    auto_join_rooms_for_guests: bool = field(True)

    rc_message: RateLimit = bucket(0.2, 10)
    rc_login: LoginRateLimits = field(factory=LoginRateLimits)
    rc_registration: RateLimit = bucket(0.17, 3)
    rc_joins: JoinRateLimits = field(factory=JoinRateLimits)
    rc_joins_per_room: RateLimit = bucket(1, 10)
    rc_invites: InviteRateLimits = field(factory=InviteRateLimits)
    rc_room_creation: RateLimit = bucket(0.016, 10)
    rc_presence: PresenceRateLimits = field(factory=PresenceRateLimits)
    rc_key_requests: RateLimit = bucket(20, 100)
    rc_3pid_validation: RateLimit = bucket(0.003, 5)
    rc_admin_redaction: RateLimit | None = field(None)
    rc_media_create: RateLimit = bucket(10, 50)
    rc_profile: RateLimit = bucket(0.1, 10)
    rc_user_directory: RateLimit = bucket(0.016, 200)
    rc_reports: RateLimit = bucket(1, 5)
    rc_delayed_event_mgmt: RateLimit = bucket(1, 5)
    rc_federation: FederationRateLimits = field(factory=FederationRateLimits)

    ip_range_blacklist: list[str] = field(factory=lambda: list(DEFAULT_IP_RANGE_BLACKLIST), check=_cidr_list)
    ip_range_whitelist: list[str] = field(factory=list, check=_cidr_list)
    federation_ip_range_blacklist: list[str] | None = field(None, check=_cidr_list)
    federation_verify_certificates: bool = field(True)
    federation_custom_ca_list: list[str] | None = field(None)
    federation_domain_whitelist: list[str] | None = field(None, check=_server_names)
    outbound_dns_servers: list[str] = field(factory=list, check=_dns_servers)
    trusted_key_servers: list[TrustedKeyServer] = field(factory=list)
    allow_device_name_lookup_over_federation: bool = field(False)
    limit_remote_rooms: LimitRemoteRooms = field(factory=LimitRemoteRooms)
    old_signing_keys: dict[str, OldSigningKey] = field(factory=dict, check=_old_signing_keys)
    key_refresh_interval: Duration = field(Duration(86_400_000))
    allow_public_rooms_over_federation: bool = field(False)
    federation: FederationSection = field(factory=FederationSection)

    media_store_path: str = field("media_store")
    max_upload_size: ByteSize = field(ByteSize(50 * 1024 * 1024))
    max_request_body_size: ByteSize = field(ByteSize(10 * 1024 * 1024))
    max_image_pixels: ByteSize = field(ByteSize(32 * 1024 * 1024))
    dynamic_thumbnails: bool = field(False)
    thumbnail_sizes: list[ThumbnailSize] = field(factory=lambda: [
        ThumbnailSize(width=w, height=h, method=m) for w, h, m in DEFAULT_THUMBNAIL_SIZES])  # type: ignore[arg-type]
    enable_authenticated_media: bool = field(True)
    unused_expiration_time: Duration = field(Duration(24 * 3_600_000))
    max_pending_media_uploads: int = field(5, check=_positive)
    media_upload_limits: list[MediaUploadLimit] = field(factory=list)
    url_preview_enabled: bool = field(False)
    url_preview_ip_range_blacklist: list[str] | None = field(None, check=_cidr_list)
    url_preview_ip_range_whitelist: list[str] = field(factory=list, check=_cidr_list)
    url_preview_accept_language: list[str] = field(factory=lambda: ["en"])
    max_spider_size: ByteSize = field(ByteSize(10 * 1024 * 1024), check=_positive)

    max_avatar_size: ByteSize | None = field(None)
    allowed_avatar_mimetypes: list[str] | None = field(None, check=mime_type_list_problem)

    require_auth_for_profile_requests: bool = field(False)
    limit_profile_requests_to_users_who_share_rooms: bool = field(False)
    user_directory: UserDirectorySection = field(factory=UserDirectorySection)
    server_notices: ServerNoticesSection = field(factory=ServerNoticesSection)

    turn_uris: list[str] = field(factory=list)
    turn_shared_secret: str | None = field(None)
    turn_shared_secret_path: str | None = field(None)
    turn_username: str | None = field(None)
    turn_password: str | None = field(None)
    turn_user_lifetime: Duration = field(Duration(3_600_000))
    turn_allow_guests: bool = field(True)

    retention: RetentionSection = field(factory=RetentionSection, check=RETENTION_CHECK)

    max_event_delay_duration: Duration | None = field(None, check=_positive)
    max_delayed_events_per_user: int = field(100, check=_non_negative)

    default_room_version: str = field("12", check=_room_version)
    alias_creation_rules: list[DirectoryRule] | None = field(None)
    room_list_publication_rules: list[DirectoryRule] | None = field(None)
    forget_rooms_on_leave: bool = field(False)
    presence: PresenceSection = field(factory=PresenceSection)
    #: Push-rule evaluation of each new event (notification counts, pushers). Off only to
    #: measure what it costs (bench/RESULTS.md); clients then see no notification counts.
    push_rule_evaluation: bool = field(True)
    enable_metrics: bool = field(False)
    # Garbage collection on a timer (homeserver/gc_schedule.py): per generation, the
    # allocation counts past which it is due (None: Python's) and the time between two runs.
    gc_thresholds: list[int] | None = field(None, check=_three_counts)
    gc_min_interval: list[Duration] = field(factory=lambda: [Duration(1000), Duration(10_000), Duration(30_000)],
                                            check=_three_intervals)

    max_group_size: int = field(1500, check=_positive)
    to_device_retention: Duration = field(Duration(30 * 86_400_000))
    to_device_inbox_limit: int = field(10_000, check=_positive)

    # The MLS delivery service (docs/mls.md).
    mls_commit_retention: Duration = field(Duration(30 * 86_400_000))
    mls_epoch_lag: int = field(3, check=_non_negative)
    mls_removal_grace: Duration = field(Duration(3_600_000))
    mls_max_message_size: ByteSize = field(ByteSize(2 * 1024 * 1024), check=_positive)

    # Worker processes (config/workers.py, docs/workers.md).
    worker_app: str | None = field(None, check=_worker_app)
    worker_name: str | None = field(None)
    instance_map: dict[str, InstanceLocation] = field(factory=dict)
    stream_writers: dict[str, list[str]] = field(factory=dict, check=_stream_writers)
    federation_sender_instances: list[str] | None = field(None, check=_federation_senders)
    # Which process does what besides reading (docs/workers.md, homeserver/worker_roles.py).
    send_federation: bool = field(True)
    enable_media_repo: bool | None = field(None)
    media_instance_running_background_jobs: str | None = field(None)
    run_background_tasks_on: str = field("main")
    worker_replication_secret: str | None = field(None)

    def federation_ip_ranges(self) -> tuple[list[str], list[str]]:
        """(blocked, allowed) ranges for outbound federation requests.

        Synapse's deprecated ``federation_ip_range_blacklist``, when present,
        replaces both lists for federation alone: its ranges plus 0.0.0.0 and
        ::, and no allowed exceptions.  Otherwise federation uses
        ``ip_range_blacklist`` and ``ip_range_whitelist`` like every other
        outbound request.
        """
        if self.federation_ip_range_blacklist is not None:
            return [*self.federation_ip_range_blacklist, "0.0.0.0/32", "::/128"], []
        return list(self.ip_range_blacklist), list(self.ip_range_whitelist)
