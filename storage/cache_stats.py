"""Hit and miss counts of a store's in-memory cache, read by the metrics
(``synapse_util_caches_cache_hits`` etc.; storage itself knows nothing of Prometheus)."""

from __future__ import annotations

from collections.abc import Sized

import attrs


@attrs.define
class CacheStats:
    name: str
    #: The cache itself, for its size.
    entries: Sized = attrs.field(repr=False)
    hits: int = 0
    misses: int = 0

    def count(self, hit: bool, n: int = 1) -> None:
        if hit:
            self.hits += n
        else:
            self.misses += n


#: Every cache that counts, so the metrics can list them (a store registers its own).
ALL_CACHES: list[CacheStats] = []


def cache_stats(name: str, entries: Sized) -> CacheStats:
    stats = CacheStats(name, entries)
    ALL_CACHES[:] = [s for s in ALL_CACHES if s.name != name]  # a rebuilt store replaces its old one
    ALL_CACHES.append(stats)
    return stats


