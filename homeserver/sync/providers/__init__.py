"""The registry of sync sections: add a provider class here and the builder uses it.

Order matters only in that the rooms provider runs first: it records the
user's joined rooms in the shared context for the ephemeral providers.
"""

from __future__ import annotations

from homeserver.sync.providers.account_data import AccountDataProvider
from homeserver.sync.providers.e2ee_device_lists import E2eeDeviceListsProvider
from homeserver.sync.providers.e2ee_to_device import E2eeToDeviceProvider
from homeserver.sync.providers.mls import MlsProvider
from homeserver.sync.providers.presence import PresenceProvider
from homeserver.sync.providers.receipts import ReceiptsProvider
from homeserver.sync.providers.rooms import RoomsProvider
from homeserver.sync.providers.typing import TypingProvider

PROVIDERS: list[type] = [
    RoomsProvider,
    AccountDataProvider,
    ReceiptsProvider,
    TypingProvider,
    PresenceProvider,
    E2eeToDeviceProvider,
    E2eeDeviceListsProvider,
    MlsProvider,
]
