"""Signing keys: our published key document (local), other servers' keys (keyring: fetch, cache,
verify) and answering for others as a notary (notary)."""
