"""``python -m bench.traced_server -c homeserver.yaml``: the homeserver with tracemalloc on.

Each SIGUSR1 writes a snapshot to ``$TRACEMALLOC_OUT.before``, then ``.after``, then ``.3``, ...
(written under a temporary name and renamed, so a reader never sees half a file). Used by
bench/ws_memory.py; tracemalloc slows the server several-fold, so only memory is read from it.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import tracemalloc
from types import FrameType

LABELS = ["before", "after"]


def main() -> None:
    tracemalloc.start(int(os.environ.get("TRACEMALLOC_FRAMES", "1")))
    taken = [0]

    def dump(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        taken[0] += 1
        label = LABELS[taken[0] - 1] if taken[0] <= len(LABELS) else str(taken[0])
        path = f"{os.environ['TRACEMALLOC_OUT']}.{label}"
        tracemalloc.take_snapshot().dump(path + ".tmp")
        os.rename(path + ".tmp", path)

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = ["homeserver", *sys.argv[1:]]
    runpy.run_module("homeserver", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
