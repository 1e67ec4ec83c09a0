"""Start-up tuning that ``bench_peers.py --gc-freeze`` applies to every Python peer alike.

``gc.freeze()`` once the application is built moves every object that exists then (the
modules, classes and functions of the server, the framework and the libraries: some
60 000 objects here) out of the cyclic collector's sight. Without it, each full
collection walks them all (about 25-30 ms on these machines) while every request in
flight waits; with it, a full collection walks only what was made since.
"""

from __future__ import annotations

import gc
import os


def after_startup() -> None:
    """Freeze the objects made so far when the harness asks for it (``BENCH_GC_FREEZE=1``)."""
    if os.environ.get("BENCH_GC_FREEZE") == "1":
        gc.freeze()
