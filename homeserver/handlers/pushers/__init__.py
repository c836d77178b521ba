"""Pushers: where a user's notifications are sent (docs/pushers.md).

- ``settings``: ``GET /pushers`` and ``POST /pushers/set``, checked as the spec says;
- ``pool``: queues each notification for every pusher of its user, delivers, backs off;
- ``http_pusher``: the Push Gateway API payload and the POST, through the outbound client.
"""
