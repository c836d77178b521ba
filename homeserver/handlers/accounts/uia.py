"""User-interactive authentication (spec "User-Interactive Authentication API").

An endpoint states its flows (lists of stage types) and a checker per stage.
Without a completed flow the client gets a 401 carrying flows, params, the
session id and the stages done so far.  Sessions live in memory, are bound to
one purpose (e.g. "delete_devices:@alice:hs") so a session opened for one
action cannot authorise another, and expire after SESSION_LIFETIME_MS.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from homeserver.errors import MatrixError, bad_json
from homeserver.handlers.accounts.auth import now_ms
from homeserver.handlers.accounts.login import LoginHandler
from homeserver.handlers.ratelimit import RateLimiters
from homeserver.server import Server

PASSWORD = "m.login.password"
SESSION_LIFETIME_MS = 15 * 60 * 1000
MAX_SESSIONS = 10_000

# A stage checker gets the client's ``auth`` dict and returns a result to keep, or
# raises MatrixError (a failed attempt: the 401 then carries that errcode).
StageChecker = Callable[[dict[str, Any]], Awaitable[Any]]


@attrs.define
class UiaSession:
    session_id: str
    purpose: str
    created_ms: int
    results: dict[str, Any] = attrs.field(factory=dict)


class UiaRequired(MatrixError):
    """The 401 that tells the client what to do next; errcode only after a failed stage."""

    def __init__(self, body: dict[str, Any], failure: MatrixError | None = None) -> None:
        super().__init__(401, failure.errcode if failure else "M_UNAUTHORIZED",
                         failure.message if failure else "Additional authentication is required")
        self.body = body
        self.failure = failure

    def to_json(self) -> dict[str, Any]:
        if self.failure is None:
            return dict(self.body)
        return {**self.body, "errcode": self.failure.errcode, "error": self.failure.message}


class UserInteractiveAuth:
    def __init__(self, hs: Server) -> None:
        self.hs = hs
        self._sessions: dict[str, UiaSession] = {}

    async def check(self, body: dict[str, Any], purpose: str, flows: list[list[str]],
                    checkers: dict[str, StageChecker],
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The stage results once a flow is complete; otherwise raise UiaRequired."""
        auth = body.get("auth")
        if auth is not None and not isinstance(auth, dict):
            raise bad_json("auth must be an object")
        session = self._session_for(auth, purpose)
        failure: MatrixError | None = None
        stage = auth.get("type") if auth else None
        if auth and stage is not None:
            checker = checkers.get(stage) if isinstance(stage, str) else None
            if checker is None or not any(stage in flow for flow in flows):
                failure = MatrixError(400, "M_UNRECOGNIZED", "Unrecognised authentication type")
            else:
                try:
                    session.results[stage] = await checker(auth)
                except MatrixError as error:
                    if error.status != 401 and error.errcode not in ("M_FORBIDDEN", "M_UNAUTHORIZED"):
                        raise
                    failure = error
        done = set(session.results)
        if any(set(flow) <= done for flow in flows):
            self._sessions.pop(session.session_id, None)
            return session.results
        raise UiaRequired({
            "flows": [{"stages": flow} for flow in flows],
            "params": params or {},
            "session": session.session_id,
            "completed": sorted(done),
        }, failure)

    def _session_for(self, auth: dict[str, Any] | None, purpose: str) -> UiaSession:
        now = now_ms(self.hs)
        self._expire(now)
        session_id = auth.get("session") if auth else None
        if session_id is not None:
            if not isinstance(session_id, str):
                raise bad_json("auth.session must be a string")
            session = self._sessions.get(session_id)
            if session is None or session.purpose != purpose:
                raise MatrixError(400, "M_UNKNOWN", "Unknown or expired UIA session")
            return session
        session = UiaSession(secrets.token_urlsafe(24), purpose, now)
        if len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        self._sessions[session.session_id] = session
        return session

    def _expire(self, now: int) -> None:
        # Sessions are kept in creation order, so the stale ones are at the front.
        while self._sessions:
            session_id, session = next(iter(self._sessions.items()))
            if now - session.created_ms <= SESSION_LIFETIME_MS:
                return
            del self._sessions[session_id]


class PasswordUia:
    """The ``m.login.password`` UIA stage for a logged-in user confirming a sensitive action."""

    def __init__(self, hs: Server) -> None:
        self.uia = hs.get(UserInteractiveAuth)
        self.login = hs.get(LoginHandler)
        self.failed_attempts = hs.get(RateLimiters).login_failed_attempts

    async def require_password(self, body: dict[str, Any], user_id: str, action: str) -> None:
        """Return once the client proved it knows ``user_id``'s password, else raise UiaRequired."""

        async def password_stage(auth: dict[str, Any]) -> str:
            claimed = self.login.user_id_from_identifier(auth)
            if claimed != user_id:
                raise MatrixError(403, "M_FORBIDDEN", "Authenticated as the wrong user")
            # Wrong passwords here count against the same limit as failed logins, so a
            # stolen access token is no oracle for guessing the password.
            self.failed_attempts.ratelimit(user_id, update=False)
            try:
                return await self.login.check_password(user_id, auth.get("password"))
            except MatrixError as error:
                if error.errcode == "M_FORBIDDEN":
                    self.failed_attempts.record_action(user_id)
                raise

        await self.uia.check(body, f"{action}:{user_id}", [[PASSWORD]], {PASSWORD: password_stage})
