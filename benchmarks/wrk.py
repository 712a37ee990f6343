"""Run ``wrk`` with generated Lua scripts and parse its ``--latency`` report.

The scripts count every response outside 2xx per thread and print the totals from
``done()``, because wrk's own "Non-2xx or 3xx" line treats 3xx as success.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.patient_payload import body_template

FHIR_BASE = "/fhir"
WRK_TIMEOUT = "10s"

_COUNTING = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
non2xx = 0
first_bad = 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == 0 then first_bad = status end
  end
end
function done(summary, latency, requests)
  local total, bad = 0, 0
  for _, t in ipairs(threads) do
    total = total + t:get("non2xx")
    if bad == 0 then bad = t:get("first_bad") end
  end
  io.write(string.format("BENCH_NON2XX %d\nBENCH_FIRST_BAD %d\n", total, bad))
end
"""

_HEADERS = """
local headers = {["Content-Type"] = "application/fhir+json", ["Accept"] = "application/fhir+json"}
"""


def _lua_string(value: str) -> str:
    """A Lua long-bracket literal holding ``value`` verbatim."""
    level = 1
    while f"]{'=' * level}]" in value:
        level += 1
    return f"[{'=' * level}[{value}]{'=' * level}]"


def create_script(tag: str) -> str:
    """Lua that POSTs the Patient payload with a unique record number per request
    (``tag-thread-n``, in the identifier and the email)."""
    parts = body_template()
    pieces = ", ".join(_lua_string(part) for part in parts)
    return (
        _COUNTING
        + _HEADERS
        + f"""
local pieces = {{{pieces}}}
local tag = {_lua_string(tag)}
local n = 0
request = function()
  n = n + 1
  local body = table.concat(pieces, tag .. "-" .. tid .. "-" .. n)
  return wrk.format("POST", "{FHIR_BASE}/Patient", headers, body)
end
"""
    )


def read_script(ids_file: Path) -> str:
    """Lua that GETs a uniformly random Patient id from ``ids_file`` (one id per line)."""
    return (
        _COUNTING
        + _HEADERS
        + f"""
local reqs = {{}}
init = function(args)
  for line in io.lines({_lua_string(str(ids_file))}) do
    if line ~= "" then
      reqs[#reqs + 1] = wrk.format("GET", "{FHIR_BASE}/Patient/" .. line, headers)
    end
  end
  math.randomseed(os.time() * 1000 + tid)
end
request = function()
  return reqs[math.random(#reqs)]
end
"""
    )


def get_script(paths: Sequence[str]) -> str:
    """Lua that GETs one of ``paths`` (with their query strings) uniformly at random."""
    entries = ", ".join(_lua_string(path) for path in paths)
    return (
        _COUNTING
        + _HEADERS
        + f"""
local paths = {{{entries}}}
local reqs = {{}}
init = function(args)
  for i, path in ipairs(paths) do
    reqs[i] = wrk.format("GET", path, headers)
  end
  math.randomseed(os.time() * 1000 + tid)
end
request = function()
  return reqs[math.random(#reqs)]
end
"""
    )


@dataclass(frozen=True)
class WrkResult:
    """One wrk measurement; latencies in milliseconds."""

    requests_per_sec: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    first_bad_status: int | None
    socket_errors: int

    @property
    def ok(self) -> bool:
        """True when every response was 2xx and no socket error happened."""
        return self.requests > 0 and self.non_2xx == 0 and self.socket_errors == 0

    def problem(self) -> str | None:
        """A short description of what went wrong, or None."""
        parts: list[str] = []
        if self.requests == 0:
            parts.append("no responses")
        if self.non_2xx:
            parts.append(f"{self.non_2xx} non-2xx (first {self.first_bad_status})")
        if self.socket_errors:
            parts.append(f"{self.socket_errors} socket errors")
        return ", ".join(parts) or None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_NUM = r"([\d.]+)(us|ms|s|m|h)"


def _percentile(output: str, pct: int) -> float:
    match = re.search(rf"^\s*{pct}(?:\.0+)?%\s+{_NUM}\s*$", output, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {pct}% latency in wrk output:\n{output}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def _int(pattern: str, output: str, default: int | None = None) -> int:
    match = re.search(pattern, output, re.MULTILINE)
    if match is None:
        if default is None:
            raise ValueError(f"pattern {pattern!r} not found in wrk output:\n{output}")
        return default
    return int(match.group(1))


def parse(output: str) -> WrkResult:
    """Parse the text wrk prints with ``--latency`` plus the counting script's lines."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if rps is None:
        raise ValueError(f"no Requests/sec in wrk output:\n{output}")
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    first_bad = _int(r"^BENCH_FIRST_BAD (\d+)", output)
    return WrkResult(
        requests_per_sec=float(rps.group(1)),
        p50_ms=_percentile(output, 50),
        p99_ms=_percentile(output, 99),
        requests=_int(r"^\s*(\d+) requests in ", output),
        non_2xx=_int(r"^BENCH_NON2XX (\d+)", output),
        first_bad_status=first_bad or None,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def run(url: str, script: Path, *, duration: float, connections: int, threads: int) -> WrkResult:
    """Run wrk against ``url`` with ``script`` and return the parsed result."""
    argv = [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration))}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        f"--script={script}",
        url,
    ]
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=duration + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}: {proc.stderr or proc.stdout}")
    return parse(proc.stdout)
