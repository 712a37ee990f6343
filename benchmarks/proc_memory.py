"""Resident memory of a server process from Linux ``/proc``: VmRSS now, the peak (VmHWM) and
its reset through ``clear_refs``, and which process of a server's group actually serves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KIB_PER_MIB = 1024


def status_kib(pid: int, field: str) -> int:
    """A ``kB`` field (VmRSS, VmHWM) of ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid: int) -> str | None:
    """Reset VmHWM to the current RSS (``echo 5 > clear_refs``); the reason when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError as exc:
        return f"clear_refs not writable ({exc.strerror or exc}); VmHWM is the peak since start"
    return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread's ``children`` list)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def serving_pid(pid: int) -> int:
    """The process that runs the app: uvicorn with one worker serves in ``pid`` itself; with a
    supervisor (several workers, reloader) it must have exactly one child to be unambiguous."""
    kids = children(pid)
    if not kids:
        return pid
    if len(kids) == 1 and not children(kids[0]):
        return kids[0]
    raise RuntimeError(f"process {pid} has children {kids}: cannot tell which one serves")


@dataclass(frozen=True)
class PeakGrowth:
    """Peak resident memory growth of one process during one operation."""

    store: str
    operation: str
    before_kib: int
    peak_kib: int
    after_kib: int
    note: str | None

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.before_kib) / KIB_PER_MIB

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "operation": self.operation,
            "vmrss_before_kib": self.before_kib,
            "vmhwm_kib": self.peak_kib,
            "vmrss_after_kib": self.after_kib,
            "growth_mib": round(self.growth_mib, 2),
            "note": self.note,
        }


def peak_growth(pid: int, *, store: str, operation: str, action: Callable[[], None]) -> PeakGrowth:
    """VmHWM after ``action`` minus VmRSS before it, with the peak reset just before."""
    before = status_kib(pid, "VmRSS")
    note = reset_peak(pid)
    action()
    return PeakGrowth(store, operation, before, status_kib(pid, "VmHWM"),
                      status_kib(pid, "VmRSS"), note)
