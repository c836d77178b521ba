"""The X-Matrix Authorization scheme (spec: "Request Authentication"), without I/O.

A request is signed as the JSON object ``{method, uri, origin, destination[, content]}``
with the origin's signing key; the signature travels in
``Authorization: X-Matrix origin="...",destination="...",key="...",sig="..."``.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from homeserver.events.builder import ServerSigningKey
from homeserver.events.signing import sign_json

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Unquoted values: a token, leniently widened to base64's '/' and '=' (some servers leave sig unquoted).
_BARE_VALUE = re.compile(r"[^,\s\"]+")
_SCHEME = "x-matrix"


class XMatrixParseError(ValueError):
    """The header is not a well-formed X-Matrix credential."""


@attrs.frozen
class XMatrixCredential:
    origin: str
    destination: str | None
    key_id: str
    signature: str


def request_signing_object(method: str, uri: str, origin: str, destination: str,
                           content: Any = None) -> dict[str, Any]:
    """The JSON object whose signature authenticates a request (``content`` only when there is a body)."""
    obj: dict[str, Any] = {"method": method.upper(), "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        obj["content"] = content
    return obj


def sign_request(key: ServerSigningKey, method: str, uri: str, destination: str, content: Any = None) -> str:
    """The Authorization header value for a request from ``key``'s server to ``destination``."""
    signed = sign_json(request_signing_object(method, uri, key.server_name, destination, content),
                       key.server_name, key.key_id, key.signing_key)
    signature = signed["signatures"][key.server_name][key.key_id]
    return format_credential(XMatrixCredential(key.server_name, destination, key.key_id, signature))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_credential(credential: XMatrixCredential) -> str:
    params = [("origin", credential.origin)]
    if credential.destination is not None:
        params.append(("destination", credential.destination))
    params += [("key", credential.key_id), ("sig", credential.signature)]
    return "X-Matrix " + ",".join(f"{name}={_quote(value)}" for name, value in params)


def is_x_matrix(header: str) -> bool:
    return header[: len(_SCHEME)].lower() == _SCHEME and header[len(_SCHEME): len(_SCHEME) + 1] in (" ", "")


def parse_credential(header: str) -> XMatrixCredential:
    """Parse ``X-Matrix k=v,...`` (RFC 9110 auth-params: token or quoted-string values).

    The scheme and parameter names are case-insensitive; unknown parameters are
    ignored; ``origin``, ``key`` and ``sig`` are required and ``destination``
    optional (older servers omit it).
    """
    if not is_x_matrix(header):
        raise XMatrixParseError("not an X-Matrix credential")
    params = _parse_params(header[len(_SCHEME):])
    missing = [name for name in ("origin", "key", "sig") if not params.get(name)]
    if missing:
        raise XMatrixParseError(f"missing {', '.join(missing)}")
    return XMatrixCredential(params["origin"], params.get("destination"), params["key"], params["sig"])


def _parse_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    length = len(text)
    while True:
        position = _skip_space(text, position)
        if position >= length:
            break
        name_match = _TOKEN.match(text, position)
        if name_match is None:
            raise XMatrixParseError("expected a parameter name")
        name = name_match.group().lower()
        position = _skip_space(text, name_match.end())
        if position >= length or text[position] != "=":
            raise XMatrixParseError(f"expected '=' after {name}")
        position = _skip_space(text, position + 1)
        value, position = _parse_value(text, position)
        if name in params:
            raise XMatrixParseError(f"{name} given twice")
        params[name] = value
        position = _skip_space(text, position)
        if position >= length:
            break
        if text[position] != ",":
            raise XMatrixParseError("expected ',' between parameters")
        position += 1
    return params


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t":
        position += 1
    return position


def _parse_value(text: str, position: int) -> tuple[str, int]:
    if position < len(text) and text[position] == '"':
        chars: list[str] = []
        position += 1
        while position < len(text):
            char = text[position]
            if char == "\\" and position + 1 < len(text):
                chars.append(text[position + 1])
                position += 2
            elif char == '"':
                return "".join(chars), position + 1
            else:
                chars.append(char)
                position += 1
        raise XMatrixParseError("unterminated quoted value")
    token = _BARE_VALUE.match(text, position)
    if token is None:
        raise XMatrixParseError("expected a value")
    return token.group(), token.end()
