"""The WebSocket sync stream (docs/websocket.md): sync-shaped frames pushed as things change."""
