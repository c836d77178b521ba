"""The files under ``media_store_path``: where each one lives, and writing them so none is ever half there.

Layout (IDs are ours, checked against FILE_ID before they become a path, so no client
string ever reaches the filesystem)::

    local_content/ab/cd/efgh...        an upload, by media ID (sharded by its first 4 letters)
    remote_content/ab/cd/efgh...       a copy of remote media, by our own file ID
    thumbnails/local/ab/cd/efgh.../    thumbnails of an upload: <w>x<h>-<method>[-animated].<ext>
    thumbnails/remote/ab/cd/efgh.../   thumbnails of a remote copy
    tmp/                               bodies still arriving; emptied at start-up

Every file is written to tmp/, fsynced, renamed into place and its directory fsynced, so a
crash leaves either the whole file or none of it.  Metadata is committed only after that.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import string
import tempfile
from typing import IO, Literal

from twisted.internet.threads import deferToThread

from homeserver.errors import too_large
from homeserver.server import Server
from homeserver.spooled_file import SpooledFile

logger = logging.getLogger(__name__)

FILE_ID = re.compile(r"^[A-Za-z0-9_-]{5,255}$")
MEDIA_ID_LENGTH = 24
MEDIA_ID_ALPHABET = string.ascii_letters
FileKind = Literal["local", "remote"]


def new_file_id() -> str:
    """A fresh media (or remote file) ID: 24 random letters, as Synapse makes them."""
    return "".join(secrets.choice(MEDIA_ID_ALPHABET) for _ in range(MEDIA_ID_LENGTH))


def is_valid_file_id(file_id: str) -> bool:
    return FILE_ID.match(file_id) is not None


def _sharded(file_id: str) -> str:
    if not is_valid_file_id(file_id):
        raise ValueError(f"not a media file ID: {file_id!r}")
    return os.path.join(file_id[0:2], file_id[2:4], file_id[4:])


class MediaFileStore:
    """Built once at start-up: makes the directories and clears what a crash left in tmp/."""

    def __init__(self, hs: Server) -> None:
        config = hs.config
        self.base = os.path.abspath(config.media_store_path)
        self.tmp_dir = os.path.join(self.base, "tmp")
        for sub in ("local_content", "remote_content", "thumbnails", "tmp"):
            os.makedirs(os.path.join(self.base, sub), exist_ok=True)
        self._clear_tmp()

    def _clear_tmp(self) -> None:
        for name in os.listdir(self.tmp_dir):
            path = os.path.join(self.tmp_dir, name)
            try:
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError as exc:
                logger.warning("cannot remove leftover %s: %s", path, exc)

    def content_path(self, kind: FileKind, file_id: str) -> str:
        return os.path.join(self.base, f"{kind}_content", _sharded(file_id))

    def thumbnail_dir(self, kind: FileKind, file_id: str) -> str:
        return os.path.join(self.base, "thumbnails", kind, _sharded(file_id))

    async def commit(self, spooled: SpooledFile, destination: str) -> None:
        """Make a spooled body durable at ``destination`` (off the reactor: fsync can take a while)."""
        await deferToThread(_commit_file, spooled.path, destination)

    async def write_atomically(self, destination: str, data: bytes) -> None:
        await deferToThread(_write_atomically, self.tmp_dir, destination, data)

    def open(self, path: str) -> IO[bytes] | None:
        """The file for reading, or None if it is not there (deleted since its row was read)."""
        try:
            return open(path, "rb")  # noqa: SIM115 - the response closes it once sent
        except FileNotFoundError:
            return None

    async def delete(self, kind: FileKind, file_id: str) -> None:
        """Remove a file and its thumbnails; a missing file is not an error."""
        await deferToThread(_delete, self.content_path(kind, file_id), self.thumbnail_dir(kind, file_id))

    @staticmethod
    def discard(spooled: SpooledFile) -> None:
        try:
            os.unlink(spooled.path)
        except FileNotFoundError:
            pass


class FileSink:
    """A body we download into ``tmp/`` (remote media, preview images): hashed, counted, capped at
    ``max_size`` (413 M_TOO_LARGE past it); ``done()`` hands it over, ``discard()`` removes it."""

    def __init__(self, directory: str, max_size: int) -> None:
        self.max_size = max_size
        self.length = 0
        self._hash = hashlib.sha256()
        fd, self.path = tempfile.mkstemp(prefix="remote-", dir=directory)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.length += len(data)
        if self.length > self.max_size:
            raise too_large(f"The file is larger than this server's limit of {self.max_size} bytes")
        assert self._file is not None
        self._file.write(data)
        self._hash.update(data)

    def done(self) -> SpooledFile:
        assert self._file is not None
        self._file.close()
        self._file = None
        return SpooledFile(self.path, self.length, self._hash.hexdigest())

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit_file(source: str, destination: str) -> None:
    with open(source, "rb") as handle:
        os.fdatasync(handle.fileno())  # the data and the size; the rename is made durable below
    directory = os.path.dirname(destination)
    os.makedirs(directory, exist_ok=True)
    os.replace(source, destination)
    _fsync_dir(directory)


def _write_atomically(tmp_dir: str, destination: str, data: bytes) -> None:
    temporary = os.path.join(tmp_dir, f"write-{secrets.token_hex(8)}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        _commit_file(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _delete(content: str, thumbnails: str) -> None:
    try:
        os.unlink(content)
    except FileNotFoundError:
        pass
    shutil.rmtree(thumbnails, ignore_errors=True)
