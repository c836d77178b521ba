"""Sending transactions to other servers: persisted queues per destination (sender.py), EDUs
from the stream announcements (edus.py), backoff (backoff.py). docs/federation.md, "Sending"."""

from federation.sender.edus import EduForwarder
from federation.sender.sender import FederationSender

__all__ = ["EduForwarder", "FederationSender"]
