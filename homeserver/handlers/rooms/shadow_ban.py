"""Shadow-banned accounts (docs/admin.md): what they send seems to work but reaches nobody.

As Synapse does, a shadow-banned user's message and state sends answer 200 with an event
ID that exists nowhere, their invites answer 200 and invite no one, a room they create
has none of the invites they asked for, and their typing goes nowhere. A retry with the
same transaction ID gets the same made-up event ID, as a real send's retry would.
"""

from __future__ import annotations

import secrets
from typing import Any

#: Made-up event IDs remembered for retries (oldest forgotten first).
KEEP_FAKE_SENDS = 10_000


def is_shadow_banned(requester: Any) -> bool:
    """Requesters built by the server itself (notices, delayed events) carry no flag."""
    return bool(getattr(requester, "shadow_banned", False))


class FakeSends:
    """The event IDs given to a shadow-banned sender, per (scope, txn_id) for retries."""

    def __init__(self) -> None:
        self._by_txn: dict[tuple[str, str], str] = {}

    def event_id(self, txn: tuple[str, str] | None) -> str:
        if txn is not None and txn in self._by_txn:
            return self._by_txn[txn]
        # The same shape as a real v4+ event ID: "$" and 43 URL-safe base64 characters.
        made_up = "$" + secrets.token_urlsafe(32)
        if txn is not None:
            while len(self._by_txn) >= KEEP_FAKE_SENDS:
                del self._by_txn[next(iter(self._by_txn))]
            self._by_txn[txn] = made_up
        return made_up
