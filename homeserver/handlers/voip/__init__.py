"""Voice and video calls: TURN credentials for clients (the signalling itself is ordinary room events)."""
