"""Matrix error responses (spec: "Standard error response")."""

from __future__ import annotations

from typing import Any


class MatrixError(Exception):
    """An error the client sees as ``{"errcode": ..., "error": ...}``."""

    def __init__(self, status: int, errcode: str, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {errcode}: {message}")
        self.status = status
        self.errcode = errcode
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.message, **self.extra}


def not_json(message: str = "Content not JSON.") -> MatrixError:
    return MatrixError(400, "M_NOT_JSON", message)


def bad_json(message: str) -> MatrixError:
    return MatrixError(400, "M_BAD_JSON", message)


def missing_param(name: str) -> MatrixError:
    return MatrixError(400, "M_MISSING_PARAM", f"Missing parameter: {name}")


def invalid_param(message: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", message)


def forbidden(message: str) -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", message)


def not_found(message: str = "Not found") -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", message)


def too_large(message: str = "Request too large") -> MatrixError:
    return MatrixError(413, "M_TOO_LARGE", message)


def unrecognized(status: int = 404, message: str = "Unrecognized request") -> MatrixError:
    return MatrixError(status, "M_UNRECOGNIZED", message)


def limit_exceeded(retry_after_ms: int) -> MatrixError:
    return MatrixError(429, "M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=retry_after_ms)


def missing_token() -> MatrixError:
    return MatrixError(401, "M_MISSING_TOKEN", "Missing access token")


def unknown_token(message: str = "Unrecognised access token", soft_logout: bool = False) -> MatrixError:
    return MatrixError(401, "M_UNKNOWN_TOKEN", message, soft_logout=soft_logout)
