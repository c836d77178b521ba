"""Reading who a client request claims to be: the access token and the peer address.

The token's meaning (which user, which device, expired or not) belongs to the
accounts handlers; this module only knows where HTTP carries it. Any object with
an ``authenticate_token`` coroutine can check it, so the HTTP layer stays free of
business logic.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from twisted.web.server import Request

from homeserver.errors import MatrixError, missing_token, unknown_token

RequesterT = TypeVar("RequesterT", covariant=True)


class TokenAuthenticator(Protocol[RequesterT]):
    async def authenticate_token(self, token: str, *, allow_guest: bool, allow_expired: bool,
                                 client_ip: str | None) -> RequesterT: ...


def token_from_request(request: Request) -> str | None:
    """The access token the client sent, or None; a malformed header is M_MISSING_TOKEN."""
    header = request.getHeader("authorization")
    query_values = request.args.get(b"access_token")
    query_token = None
    if query_values:
        try:
            query_token = query_values[0].decode("utf-8")
        except UnicodeDecodeError:
            raise unknown_token() from None
    if header is None:
        return query_token or None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise MatrixError(401, "M_MISSING_TOKEN", "Authorization header must be 'Bearer <token>'")
    if query_token is not None and query_token != value.strip():
        raise MatrixError(400, "M_MISSING_TOKEN", "Two different access tokens were given")
    return value.strip()


def client_ip(request: Request) -> str:
    """The peer address (X-Forwarded-For on listeners that trust it), for rate limits and last-seen."""
    return str(getattr(request.getClientAddress(), "host", "unknown"))


async def get_user_by_req(request: Request, auth: TokenAuthenticator[RequesterT], *,
                          allow_guest: bool = False, allow_expired: bool = False) -> RequesterT:
    """Authenticate a client request: M_MISSING_TOKEN / M_UNKNOWN_TOKEN (401) on failure."""
    token = token_from_request(request)
    if token is None:
        raise missing_token()
    requester: Any = await auth.authenticate_token(
        token, allow_guest=allow_guest, allow_expired=allow_expired, client_ip=client_ip(request))
    request.requester_id = requester.user_id  # type: ignore[attr-defined]  # for the access log
    return requester
