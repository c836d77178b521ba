"""Outbound HTTP: the one client every request to another host goes through.

- ``client.OutboundHttpClient``: ``await client.request(method, url, ...)`` -> ``OutboundResponse``
  (``code``, ``header()``, ``read()``, ``json()``, ``stream_to()``, ``discard()``).
- ``address_filter.AddressFilter``: ``ip_range_blacklist`` minus ``ip_range_whitelist``,
  applied to every resolved address at connect time.
- ``dns.HostResolver``: A/AAAA/SRV lookups (``outbound_dns_servers`` or /etc/resolv.conf).
- ``tls``: certificate policies (verify against the platform or a custom CA list, or not at all).

Federation (federation/transport/client.py) adds server-name resolution and request signing on top.
"""
