"""CPU time from Linux ``/proc``: of a process with its descendants (a server and its
workers), and of every PostgreSQL process on this machine. A benchmark reads both before and
after a run and divides by the requests served: what one request costs each side."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _seconds(pid: int) -> float:
    """utime + stime of one process, 0 when it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its live descendants."""
    pending, total = [pid], 0.0
    while pending:
        current = pending.pop()
        total += _seconds(current)
        pending += _children(current)
    return total


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by the live processes named ``postgres`` (server, backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += _seconds(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return total
