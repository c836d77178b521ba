"""The server-server API: transport (X-Matrix signing both ways, server discovery), signing keys
(ours, the key ring that fetches and caches other servers', the notary), queries, and the thin
HTTP modules under federation/api/ that the federation and keys listeners serve."""
