"""The garbage collector for a process that holds a cluster's graph and a storm's state.

The engine's state (the topology, its reach caches, alerts, incidents, events) is large and
almost free of reference cycles, so reference counting frees it. CPython's cyclic collector
still walks every tracked object on each full collection, and with default thresholds it runs
one every time the heap has grown by a quarter: over a storm of 400,000 alerts on a 5,000-node
graph that is a third of the replay's time, and a cost per alert that grows with the storm.
Young generations are still collected often (cycles in short-lived objects are found as
before); full collections become rare.
"""

from __future__ import annotations

import gc

# Objects allocated before a young collection, then how rarely the older generations are.
THRESHOLDS = (50_000, 50, 1000)


def tune_for_large_heaps() -> None:
    """Collect young objects in larger batches and the old generation rarely (process-wide:
    called by the entry points, never by the engine itself)."""
    gc.set_threshold(*THRESHOLDS)
