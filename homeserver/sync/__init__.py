"""The one sync builder that both long-poll /sync and the WebSocket stream use."""
