"""The HTTP layer: routing, Matrix errors, JSON bodies, CORS and access logs.

Nothing in here knows about business logic; API modules in homeserver/api/
register routes on a Router and call handlers.
"""
