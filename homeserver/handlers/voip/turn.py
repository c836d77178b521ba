"""TURN credentials for ``GET /voip/turnServer``.

With a shared secret we mint time-limited credentials in the scheme of the TURN
REST API that coturn implements (``use-auth-secret``): the username is
``"<expiry unix seconds>:<user id>"`` and the password is the standard-base64
HMAC-SHA1 of that username keyed by the secret, so coturn can check it without
talking to us. Without a secret, fixed ``turn_username``/``turn_password`` are
handed out. With no URIs (or neither kind of credential) the answer is ``{}``,
which clients read as "no TURN here", as Synapse does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import attrs

from homeserver.server import Server


@attrs.frozen
class TurnCredentials:
    username: str
    password: str
    ttl_seconds: int
    uris: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"username": self.username, "password": self.password, "ttl": self.ttl_seconds,
                "uris": list(self.uris)}


def rest_api_password(secret: str, username: str) -> str:
    """coturn's REST-API password for ``username``: base64(HMAC-SHA1(secret, username)), padded."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


class TurnHandler:
    def __init__(self, hs: Server) -> None:
        config = hs.config
        self.reactor = hs.reactor
        self.uris: list[str] = list(config.turn_uris)
        self.secret: str | None = config.turn_shared_secret or None
        self.username: str | None = config.turn_username or None
        self.password: str | None = config.turn_password or None
        self.lifetime_ms = int(config.turn_user_lifetime)
        self.allow_guests: bool = config.turn_allow_guests

    def credentials_for(self, user_id: str) -> TurnCredentials | None:
        """What to tell this user, or None when there is no usable TURN configuration."""
        if not self.uris or self.lifetime_ms <= 0:
            return None
        ttl = self.lifetime_ms // 1000
        if self.secret:
            expiry = int((self.reactor.seconds() * 1000 + self.lifetime_ms) // 1000)
            username = f"{expiry}:{user_id}"
            return TurnCredentials(username, rest_api_password(self.secret, username), ttl, self.uris)
        if self.username and self.password:
            return TurnCredentials(self.username, self.password, ttl, self.uris)
        return None
