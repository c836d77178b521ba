"""A request body the HTTP layer has written to disk, as the handlers receive it.

It sits below both layers: the HTTP layer produces it while the body arrives, and
the media handlers take ownership of the file without knowing about HTTP.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class SpooledFile:
    """A complete request body on disk; whoever claimed it must move or delete ``path``."""

    path: str
    length: int
    sha256: str
