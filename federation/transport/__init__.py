"""Federation transport: X-Matrix request signing (x_matrix), finding servers (server_resolver),
signed outbound requests (client) and authenticating inbound ones (auth)."""
