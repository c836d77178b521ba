"""In-process checks of contracts other areas build on: the account-data stream and device hooks.

These run a real HomeServer object (real config, real database, migrations) without
HTTP, because the interfaces under test are Python APIs, not endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from homeserver.app import HomeServer
from homeserver.errors import MatrixError
from homeserver.handlers.accounts.account import AccountHandler
from homeserver.handlers.accounts.auth import Auth, Requester, hash_token
from homeserver.handlers.accounts.devices import DeviceHandler
from homeserver.handlers.accounts.login import LoginHandler
from homeserver.handlers.accounts.profile import ProfileHandler
from homeserver.handlers.accounts.registration import RegistrationHandler
from homeserver.notifier import Notifier, StreamAdvance
from storage.stores.access_tokens import AccessTokenStore
from storage.stores.account_data import AccountDataStore
from storage.stores.profiles import Profile
from tests.support.databases import ENGINES
from tests.support.in_process import config_on_fresh_database, running


@pytest.fixture(params=ENGINES)
def config_path(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    yield from config_on_fresh_database(request.param, tmp_path)


@pytest_twisted.async_yield_fixture
async def hs(config_path: Path) -> AsyncIterator[HomeServer]:
    async for homeserver in running(config_path):
        yield homeserver


@pytest_twisted.ensureDeferred
async def test_account_data_stream_positions_changes_and_notifications(hs: HomeServer) -> None:
    store = hs.get(AccountDataStore)
    advances: list[StreamAdvance] = []
    hs.get(Notifier).add_listener(advances.append)
    start = await store.get_current_position()
    first = await store.put_account_data("@a:test.local", None, "t.one", {"n": 1})
    second = await store.put_account_data("@a:test.local", "!r:test.local", "t.two", {"n": 2})
    await store.put_account_data("@b:test.local", None, "t.one", {"other": True})
    third = await store.put_account_data("@a:test.local", None, "t.one", {"n": 3})
    assert start < first < second < third
    assert await store.get_current_position() >= third
    assert [(a.stream, a.position, a.users) for a in advances if a.users == {"@a:test.local"}] == [
        ("account_data", first, frozenset({"@a:test.local"})),
        ("account_data", second, frozenset({"@a:test.local"})),
        ("account_data", third, frozenset({"@a:test.local"})),
    ]
    changes = await store.get_account_data_changes("@a:test.local", first, second)
    assert changes.global_data == {} and changes.rooms == {"!r:test.local": {"t.two": {"n": 2}}}
    latest = await store.get_account_data_changes("@a:test.local", second, third)
    assert latest.global_data == {"t.one": {"n": 3}} and latest.rooms == {}
    everything = await store.get_all_account_data("@a:test.local")
    assert everything.global_data == {"t.one": {"n": 3}}
    assert everything.rooms == {"!r:test.local": {"t.two": {"n": 2}}}
    assert (await store.get_account_data_changes("@a:test.local", third, third)).global_data == {}


@pytest_twisted.ensureDeferred
async def test_device_hooks_run_once_per_change_and_tokens_die_first(hs: HomeServer) -> None:
    user_id = await hs.get(RegistrationHandler).register_user("hooked", "pw")
    devices = hs.get(DeviceHandler)
    calls: list[tuple[str, str, list[str]]] = []
    token_alive_during_hook: list[bool] = []

    async def on_added(user: str, device_ids: list[str]) -> None:
        calls.append(("added", user, device_ids))

    async def on_deleted(user: str, device_ids: list[str]) -> None:
        calls.append(("deleted", user, device_ids))
        info = await hs.get(AccessTokenStore).get_access_token(hash_token(login.access_token))
        token_alive_during_hook.append(info is not None)

    async def broken_hook(user: str, device_ids: list[str]) -> None:
        raise RuntimeError("a listener failing must not undo the deletion")

    devices.on_devices_added.append(on_added)
    devices.on_devices_deleted.extend([broken_hook, on_deleted])
    login = await hs.get(LoginHandler).create_login(user_id, "HOOKDEV", None)
    await hs.get(LoginHandler).create_login(user_id, "HOOKDEV", None)  # reused: not "added" again
    await devices.delete_devices(user_id, ["HOOKDEV"])
    assert calls == [("added", user_id, ["HOOKDEV"]), ("deleted", user_id, ["HOOKDEV"])]
    assert token_alive_during_hook == [False]
    assert await devices.get_devices(user_id) == []
    with pytest.raises(MatrixError) as raised:
        await hs.get(Auth).get_user_by_access_token(login.access_token)
    assert raised.value.errcode == "M_UNKNOWN_TOKEN"


@pytest_twisted.ensureDeferred
async def test_tokens_are_stored_only_as_hashes(hs: HomeServer) -> None:
    user_id = await hs.get(RegistrationHandler).register_user("hashed", "pw")
    login = await hs.get(LoginHandler).create_login(user_id, None, None)
    rows = await hs.db.execute("all_token_hashes", "SELECT token_hash FROM access_tokens")
    stored = [row[0] for row in rows]
    assert hash_token(login.access_token) in stored
    assert login.access_token not in stored
    passwords = await hs.db.execute("password_hash", "SELECT password_hash FROM users WHERE user_id = ?",
                                    user_id)
    assert passwords[0][0].startswith("$2") and "pw" != passwords[0][0]


@pytest_twisted.ensureDeferred
async def test_profile_and_deactivation_hooks(hs: HomeServer) -> None:
    user_id = await hs.get(RegistrationHandler).register_user("profiled", "pw")
    requester = Requester(user_id, "DEV", is_guest=False, is_admin=False, access_token_id=None)
    seen: list[tuple[str, str | None]] = []
    deactivated: list[str] = []

    async def on_profile(user: str, profile: Profile) -> None:
        seen.append((user, profile.displayname))

    async def on_deactivated(user: str) -> None:
        deactivated.append(user)

    hs.get(ProfileHandler).on_profile_changed.append(on_profile)
    hs.get(AccountHandler).on_user_deactivated.append(on_deactivated)
    await hs.get(ProfileHandler).set_field(requester, user_id, "displayname", "New Name")
    assert seen == [(user_id, "New Name")]
    await hs.get(AccountHandler).deactivate(user_id)
    assert deactivated == [user_id]
