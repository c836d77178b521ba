"""Other servers' signing keys: find them, cache them, verify signatures with them.

``hs.get(KeyRing)``:

- ``get_server_keys({server: {key_id: minimum_valid_until_ts}})`` -> ``{server: {key_id: ServerKey}}``:
  the keys held valid until at least the given time.  Missing ones are fetched in
  one batch: from each server itself (``/_matrix/key/v2/server``, concurrently, one
  fetch per server however many callers wait), then from the ``trusted_key_servers``
  notaries for whatever is still missing.  A key that could not be found is not
  asked for again for ``FAILED_LOOKUP_RETRY_MS``.
- ``verify_json_for_server(server, obj, minimum_valid_until_ts)``: the server's
  signature on ``obj`` (raises SignatureError, or KeyUnavailableError, its subclass).
- ``verify_event_signatures(pdu, room_version)`` / ``verify_events_signatures(pdus, room_version)``:
  every required server's signature on the redacted event, with keys that satisfy
  the room version's validity rule (v5+: valid until the event's origin_server_ts,
  capped at now + 7 days); the batch form fetches every key the batch needs at once.

Keys are cached in memory and in ``server_signing_keys``; our own come from the key file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from twisted.internet import defer

from federation.keys.documents import (
    KeyDocument,
    KeyDocumentError,
    ServerKey,
    decode_verify_key,
    parse_key_document,
)
from federation.keys.local import LocalServerKeys
from federation.transport.client import FederationClient, FederationRequestError
from homeserver.async_utils import SharedLookups
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import (
    SignatureError,
    key_usable_for_event,
    required_signers,
    verify_event_signatures,
    verify_json_signature,
)
from homeserver.server import Server
from storage.stores.server_keys import ServerKeyStore, StoredServerKey

logger = logging.getLogger(__name__)

FAILED_LOOKUP_RETRY_MS = 60_000
KEY_FETCH_TIMEOUT_S = 20.0
KEY_RESPONSE_MAX_BYTES = 1024 * 1024
NOTARY_MAX_DOCUMENTS = 1000
MAX_REMEMBERED = 10_000
SERVER_KEY_PATH = "/_matrix/key/v2/server"
NOTARY_QUERY_PATH = "/_matrix/key/v2/query"

KeyRequest = Mapping[str, Mapping[str, int]]  # server -> key ID -> minimum valid_until_ts
FoundKeys = dict[str, dict[str, ServerKey]]


class KeyUnavailableError(SignatureError):
    """No key of the server with that ID could be found valid for long enough."""


def now_ms() -> int:
    return int(time.time() * 1000)


def ed25519_key_ids(obj: Mapping[str, Any], server_name: str) -> list[str]:
    signatures = obj.get("signatures")
    mine = signatures.get(server_name) if isinstance(signatures, Mapping) else None
    if not isinstance(mine, Mapping):
        return []
    return [key_id for key_id in mine if isinstance(key_id, str) and key_id.startswith("ed25519:")]


def _stored(document: KeyDocument, from_server: str, fetched_ts: int) -> list[StoredServerKey]:
    key_json = json.dumps(document.document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return [StoredServerKey(key.server_name, key.key_id, key.key_base64, key.valid_until_ts, key.expired_ts,
                            fetched_ts, from_server, key_json) for key in document.keys]


def _from_stored(row: StoredServerKey) -> ServerKey:
    return ServerKey(row.server_name, row.key_id, decode_verify_key(row.verify_key, row.key_id),
                     row.valid_until_ts, row.expired_ts)


class KeyRing:
    def __init__(self, hs: Server) -> None:
        self.server_name: str = hs.server_name
        self.store = hs.get(ServerKeyStore)
        self.client = hs.get(FederationClient)
        self.local = hs.get(LocalServerKeys)
        self.notaries = [n for n in hs.config.trusted_key_servers if n.server_name != hs.server_name]
        self._memory: dict[tuple[str, str], ServerKey] = {}
        self._loaded_servers: set[str] = set()
        self._failed: dict[tuple[str, str], int] = {}
        self._direct_fetches: SharedLookups[str, KeyDocument | None] = SharedLookups()
        self._direct_failed: dict[str, int] = {}
        self._own_keys = {key.key_id: key for key in self.local.server_keys()}

    # -- looking keys up --------------------------------------------------------------------

    async def get_server_keys(self, wanted: KeyRequest) -> FoundKeys:
        found: FoundKeys = {}
        missing: dict[str, dict[str, int]] = {}
        await self._load_from_store(server for server in wanted if server != self.server_name)
        for server, key_ids in wanted.items():
            for key_id, minimum in key_ids.items():
                key = self._own_key(key_id) if server == self.server_name else self._memory.get((server, key_id))
                if key is not None and key.valid_until_ts >= minimum:
                    found.setdefault(server, {})[key_id] = key
                elif server != self.server_name and not self._recently_failed(server, key_id):
                    missing.setdefault(server, {})[key_id] = minimum
        if missing:
            await self._fetch(missing)
            for server, key_ids in missing.items():
                for key_id, minimum in key_ids.items():
                    key = self._memory.get((server, key_id))
                    if key is not None and key.valid_until_ts >= minimum:
                        found.setdefault(server, {})[key_id] = key
                    else:
                        self._failed[(server, key_id)] = now_ms()
        self._forget_failures_if_many()
        return found

    def _own_key(self, key_id: str) -> ServerKey | None:
        return self._own_keys.get(key_id)

    def _forget_failures_if_many(self) -> None:
        """Bound the memory a peer can make us spend by asking about endless server names."""
        if len(self._failed) > MAX_REMEMBERED:
            cutoff = now_ms() - FAILED_LOOKUP_RETRY_MS
            self._failed = {k: t for k, t in self._failed.items() if t >= cutoff}
            if len(self._failed) > MAX_REMEMBERED:
                self._failed.clear()
        if len(self._direct_failed) > MAX_REMEMBERED:
            self._direct_failed.clear()
        if len(self._loaded_servers) > MAX_REMEMBERED:
            self._loaded_servers.clear()
            self._memory.clear()

    def _recently_failed(self, server: str, key_id: str) -> bool:
        failed_at = self._failed.get((server, key_id))
        return failed_at is not None and now_ms() - failed_at < FAILED_LOOKUP_RETRY_MS

    async def _load_from_store(self, servers: Iterable[str]) -> None:
        unloaded = {server for server in servers if server not in self._loaded_servers}
        if not unloaded:
            return
        for server, rows in (await self.store.get_keys_for_servers(unloaded)).items():
            for row in rows:
                self._memory.setdefault((server, row.key_id), _from_stored(row))
        self._loaded_servers |= unloaded

    async def _fetch(self, missing: dict[str, dict[str, int]]) -> None:
        await defer.gatherResults(
            [defer.Deferred.fromCoroutine(self.fetch_direct(server)) for server in missing], consumeErrors=True)
        still = {server: {key_id: minimum for key_id, minimum in key_ids.items()
                          if not self._satisfied(server, key_id, minimum)}
                 for server, key_ids in missing.items()}
        still = {server: key_ids for server, key_ids in still.items() if key_ids}
        for notary in self.notaries:
            if not still:
                break
            await self._fetch_from_notary(notary, still)
            still = {server: {key_id: minimum for key_id, minimum in key_ids.items()
                              if not self._satisfied(server, key_id, minimum)}
                     for server, key_ids in still.items()}
            still = {server: key_ids for server, key_ids in still.items() if key_ids}

    def _satisfied(self, server: str, key_id: str, minimum: int) -> bool:
        key = self._memory.get((server, key_id))
        return key is not None and key.valid_until_ts >= minimum

    async def fetch_direct(self, server: str) -> KeyDocument | None:
        """Ask the server itself for its keys (one request at a time per server); store what it says.

        None when it fails, and for FAILED_LOOKUP_RETRY_MS after a failure without asking again.
        """
        failed_at = self._direct_failed.get(server)
        if failed_at is not None and now_ms() - failed_at < FAILED_LOOKUP_RETRY_MS:
            return None
        document = await self._direct_fetches.run(server, lambda: self._fetch_direct(server))
        if document is None:
            self._direct_failed[server] = now_ms()
        else:
            self._direct_failed.pop(server, None)
        return document

    async def _fetch_direct(self, server: str) -> KeyDocument | None:
        try:
            body = await self.client.get_json(server, SERVER_KEY_PATH, sign=False, timeout_s=KEY_FETCH_TIMEOUT_S,
                                              max_response_bytes=KEY_RESPONSE_MAX_BYTES)
            document = parse_key_document(body, server)
        except (FederationRequestError, KeyDocumentError) as exc:
            logger.info("Could not fetch the signing keys of %s: %s", server, exc)
            return None
        await self._remember(document, server)
        return document

    async def _fetch_from_notary(self, notary: Any, wanted: dict[str, dict[str, int]]) -> None:
        query = {server: {key_id: {"minimum_valid_until_ts": minimum} for key_id, minimum in key_ids.items()}
                 for server, key_ids in wanted.items()}
        try:
            body = await self.client.post_json(notary.server_name, NOTARY_QUERY_PATH, {"server_keys": query},
                                               sign=False, timeout_s=KEY_FETCH_TIMEOUT_S)
        except FederationRequestError as exc:
            logger.info("Notary %s did not answer: %s", notary.server_name, exc)
            return
        items = body.get("server_keys") if isinstance(body, dict) else None
        if not isinstance(items, list):
            logger.info("Notary %s answered without a server_keys list", notary.server_name)
            return
        notary_keys = {key_id: decode_verify_key(key, key_id) for key_id, key in (notary.verify_keys or {}).items()}
        for item in items[:NOTARY_MAX_DOCUMENTS]:
            try:
                document = parse_key_document(item)
                if document.server_name not in wanted:
                    continue
                if notary_keys:
                    verify_json_signature(item, notary.server_name, notary_keys)
            except (KeyDocumentError, SignatureError) as exc:
                logger.info("Notary %s sent a key document we refuse: %s", notary.server_name, exc)
                continue
            await self._remember(document, notary.server_name)

    async def _remember(self, document: KeyDocument, from_server: str) -> None:
        fetched = now_ms()
        await self.store.store_keys(_stored(document, from_server, fetched))
        for key in document.keys:
            self._memory[(key.server_name, key.key_id)] = key
            self._failed.pop((key.server_name, key.key_id), None)

    # -- verifying --------------------------------------------------------------------------

    async def verify_json_for_server(self, server_name: str, obj: Mapping[str, Any],
                                     minimum_valid_until_ts: int) -> None:
        """Check ``server_name``'s signature on ``obj`` with a key valid until at least the given time."""
        key_ids = ed25519_key_ids(obj, server_name)
        if not key_ids:
            raise SignatureError(f"no ed25519 signature from {server_name}")
        found = await self.get_server_keys({server_name: {key_id: minimum_valid_until_ts for key_id in key_ids}})
        keys = found.get(server_name, {})
        if not keys:
            raise KeyUnavailableError(f"no key of {server_name} among {', '.join(sorted(key_ids))} could be found")
        verify_json_signature(obj, server_name, {key_id: key.verify_key for key_id, key in keys.items()})

    async def verify_event_signatures(self, pdu: Mapping[str, Any], room_version: RoomVersion) -> None:
        """Raise SignatureError unless every server that must sign this event did, with a usable key."""
        (problem,) = await self.verify_events_signatures([pdu], room_version)
        if problem is not None:
            raise problem

    async def verify_events_signatures(self, pdus: list[Mapping[str, Any]],
                                       room_version: RoomVersion) -> list[SignatureError | None]:
        """One result per PDU (None: verified), fetching every key the batch needs in one go."""
        wanted: dict[str, dict[str, int]] = {}
        needs: list[tuple[set[str], int] | SignatureError] = []
        for pdu in pdus:
            try:
                servers = required_signers(pdu, room_version)
            except ValueError as exc:
                needs.append(SignatureError(str(exc)))
                continue
            minimum = 0
            if room_version.enforce_key_validity:
                ts = pdu.get("origin_server_ts")
                if not isinstance(ts, int) or isinstance(ts, bool):
                    needs.append(SignatureError("origin_server_ts is not an integer"))
                    continue
                minimum = ts
            needs.append((servers, minimum))
            for server in servers:
                for key_id in ed25519_key_ids(pdu, server):
                    wanted.setdefault(server, {})[key_id] = max(wanted.get(server, {}).get(key_id, 0), minimum)
        found = await self.get_server_keys(wanted) if wanted else {}
        # A batch asks for the strictest minimum per key; an event with an older timestamp may
        # still use a key that satisfies it, so fill in from memory as well.
        results: list[SignatureError | None] = []
        current = now_ms()
        for pdu, need in zip(pdus, needs, strict=True):
            if isinstance(need, SignatureError):
                results.append(need)
                continue
            servers, minimum = need
            usable: dict[str, dict[str, Any]] = {}
            for server in servers:
                usable[server] = {}
                for key_id in ed25519_key_ids(pdu, server):
                    key = found.get(server, {}).get(key_id) or self._memory.get((server, key_id))
                    if key is None and server == self.server_name:
                        key = self._own_key(key_id)
                    if key is not None and key_usable_for_event(key.valid_until_ts, minimum, room_version, current):
                        usable[server][key_id] = key.verify_key
            try:
                verify_event_signatures(pdu, room_version, usable)
            except SignatureError as exc:
                results.append(exc)
            else:
                results.append(None)
        return results
