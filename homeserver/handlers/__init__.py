"""Business logic, grouped by area; no HTTP in here.

- accounts/: registration, login, tokens, devices, profiles, account data, UIA, admin.
- rooms/: creating rooms, membership, sending, state, history, visibility, directory.
- e2ee/: device keys, one-time keys, cross-signing, key backup, device lists, to-device.
- ephemeral/: typing, receipts, presence.
- ratelimit.py and validation.py are shared by every area.
"""
