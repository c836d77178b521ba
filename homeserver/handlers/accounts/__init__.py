"""Accounts: registration, login, tokens, devices, profiles, account data, UIA and operator tools."""
