"""Garbage collector settings for a server process.

A request allocates thousands of short-lived container objects (parsed JSON, the R4 models'
validation, mapped rows). With CPython's default threshold (a young collection every 700 net
allocations) and the large, long-lived heap the FHIR model classes leave after start-up,
collections took about a fifth of the CPU time of a transaction Bundle. Freezing what start-up
created (it lives as long as the process) keeps the oldest generation's collections small, and
a higher young-generation threshold makes them rarer. Reference counting still frees every
object that is not in a cycle at once; only cyclic garbage waits a little longer.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net allocations between young collections (CPython's default is 700)."""

_frozen = False


def tune_garbage_collector() -> None:
    """Freeze the start-up heap (once per process) and raise the collection thresholds."""
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)
