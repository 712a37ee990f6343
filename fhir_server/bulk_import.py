"""``fhir-server import PATH``: load Bundles (``.json``) and NDJSON files (``.ndjson``), one
file or a folder of them, through the server's own transaction handling, keeping the types it
serves and counting what it skips by type.

- A Bundle file (any type) becomes one transaction of its served entries, their requests kept
  (``ifNoneExist`` makes a re-run create nothing new); entries without a request are PUT by
  id. References to entries left out stay as given. If the transaction is refused, its
  entries are sent again in two batches (the ones others refer to first, then the rest with
  references rewritten to what the first wrote), so one bad entry fails alone.
- An NDJSON file is read in chunks of ``--chunk`` lines, each one transaction of PUTs by id
  (the ids of a bulk export are kept, so its references hold, and a re-run rewrites the same
  resources), falling back to a batch when refused.
- Progress is kept in a state file (default ``DATA_DIR/import-state.json``): a file done is
  skipped on the next run, an NDJSON file resumes after its last chunk written.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from fhir_server.app import create_app
from fhir_server.merging.references import reference_literals, replace_references
from fhir_server.settings import Settings

HEADERS = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
READ_ONLY = frozenset({"Provenance"})
_ENTRY = re.compile(r"^Bundle\.entry\[\d+\]( \(fullUrl [^)]*\))?: ")


@dataclass
class ImportReport:
    loaded: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    """Problems met, each with how often (the entry named in it left out)."""
    files: int = 0
    resumed: int = 0

    def table(self) -> str:
        """The summary: one row per resource type met, then the totals."""
        kinds = sorted(set(self.loaded) | set(self.skipped) | set(self.failed))
        rows = [[kind, self.loaded[kind], self.skipped[kind], self.failed[kind]]
                for kind in kinds]
        rows.append(["total", sum(self.loaded.values()), sum(self.skipped.values()),
                     sum(self.failed.values())])
        width = max([len("resource type"), *(len(str(row[0])) for row in rows)])
        lines = [f"{'resource type':<{width}} | {'loaded':>8} | {'skipped':>8} | {'failed':>8}",
                 f"{'-' * width}-+-{'-' * 8}-+-{'-' * 8}-+-{'-' * 8}"]
        lines += [f"{row[0]:<{width}} | {row[1]:>8,} | {row[2]:>8,} | {row[3]:>8,}"
                  for row in rows]
        return "\n".join(lines)


class Progress:
    """A one-line progress bar on a terminal, a line per file elsewhere."""

    def __init__(self, total_bytes: int, stream: TextIO) -> None:
        self._total = max(total_bytes, 1)
        self._done = 0
        self._stream = stream
        self._started = time.monotonic()
        self._tty = stream.isatty()

    def advance(self, done_bytes: int, resources: int, label: str) -> None:
        self._done += done_bytes
        share = min(self._done / self._total, 1.0)
        rate = resources / max(time.monotonic() - self._started, 1e-6)
        bar = "#" * int(share * 30)
        line = f"[{bar:<30}] {share:6.1%}  {resources:,} resources  {rate:,.0f}/s  {label}"
        if self._tty:
            self._stream.write("\r" + line[:120].ljust(120))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")


def source_files(path: Path) -> list[Path]:
    """The ``.json`` and ``.ndjson`` files at ``path`` (a file, or a folder searched deeply)."""
    if path.is_file():
        return [path]
    return sorted(found for found in path.rglob("*")
                  if found.is_file() and found.suffix.lower() in (".json", ".ndjson"))


class Importer:
    def __init__(self, http: httpx.AsyncClient, served: set[str], report: ImportReport,
                 *, chunk: int) -> None:
        self._http = http
        self._served = served - READ_ONLY
        self.report = report
        self._chunk = chunk

    async def bundle_file(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("resourceType") != "Bundle":
            await self.send([_put(data)] if self._keep(data) else [])
            return
        entries = []
        for entry in data.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and self._keep(resource):
                if not isinstance(entry.get("request"), dict) or data.get("type") not in (
                        "transaction", "batch"):
                    entry = _put(resource, entry.get("fullUrl"))
                entries.append(entry)
        await self.send(entries)

    def ndjson_chunks(self, path: Path, start: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(line number after the chunk, served resources as PUT entries) from line ``start``."""
        entries: list[dict[str, Any]] = []
        number = 0
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if number <= start or not line.strip():
                    continue
                try:
                    resource = json.loads(line)
                except json.JSONDecodeError:
                    self.report.failed["(not JSON)"] += 1
                    self.report.errors[f"{path.name}: a line is not JSON"] += 1
                    continue
                if isinstance(resource, dict) and self._keep(resource):
                    entries.append(_put(resource))
                if len(entries) >= self._chunk:
                    yield number, entries
                    entries = []
        yield number, entries

    def _keep(self, resource: dict[str, Any]) -> bool:
        kind = str(resource.get("resourceType"))
        if kind in self._served:
            return True
        self.report.skipped[kind] += 1
        return False

    async def send(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        response = await self._post("transaction", entries)
        if response.status_code == 200:
            self._count(entries, response.json()["entry"])
            return
        self.report.errors[f"transaction refused ({response.status_code}), sent again as "
                           f"batches: {_diagnostics(response)}"] += 1
        await self._send_as_batches(entries)

    async def _send_as_batches(self, entries: list[dict[str, Any]]) -> None:
        referred = {literal for entry in entries
                    for literal in reference_literals(entry.get("resource"))}
        first = [e for e in entries if e.get("fullUrl") in referred]
        rest = [e for e in entries if e.get("fullUrl") not in referred]
        written: dict[str, str] = {}
        for group in (first, rest):
            if not group:
                continue
            group = [entry | {"resource": replace_references(entry.get("resource"),
                                                             written.get)}
                     for entry in group]
            response = await self._post("batch", group)
            if response.status_code != 200:
                self._fail(group, f"batch refused ({response.status_code}): "
                           f"{_diagnostics(response)}")
                continue
            for entry, answer in zip(group, response.json()["entry"], strict=True):
                location = answer["response"].get("location")
                if location and entry.get("fullUrl"):
                    written[entry["fullUrl"]] = location.split("/_history")[0]
            self._count(group, response.json()["entry"])

    async def _post(self, kind: str, entries: list[dict[str, Any]]) -> httpx.Response:
        bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
        return await self._http.post("/fhir", json=bundle, headers=HEADERS)

    def _count(self, entries: list[dict[str, Any]], answers: list[dict[str, Any]]) -> None:
        for entry, answer in zip(entries, answers, strict=True):
            kind = str(entry["resource"].get("resourceType"))
            status = answer["response"]["status"]
            if status[:1] == "2":
                self.report.loaded[kind] += 1
            else:
                self.report.failed[kind] += 1
                outcome = answer["response"].get("outcome") or {}
                issues = outcome.get("issue") or [{}]
                self.report.errors[f"{status}: {_diagnostics_of(issues[0])}"] += 1

    def _fail(self, entries: list[dict[str, Any]], reason: str) -> None:
        for entry in entries:
            self.report.failed[str(entry["resource"].get("resourceType"))] += 1
        self.report.errors[reason] += 1


def _put(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    """An entry writing ``resource`` under its own id (a new id when it has none)."""
    resource_id = resource.get("id")
    entry: dict[str, Any] = {"resource": resource}
    if full_url:
        entry["fullUrl"] = full_url
    if resource_id:
        entry["request"] = {"method": "PUT", "url": f"{resource['resourceType']}/{resource_id}"}
    else:
        entry["request"] = {"method": "POST", "url": resource["resourceType"]}
    return entry


def _diagnostics(response: httpx.Response) -> str:
    try:
        return _diagnostics_of(response.json()["issue"][0])
    except (ValueError, KeyError, IndexError, TypeError):
        return response.text[:300]


def _diagnostics_of(issue: dict[str, Any]) -> str:
    """An issue's text without the entry it names, so the same problem counts once."""
    text = str(issue.get("diagnostics", ""))
    return _ENTRY.sub("", text)[:300]


class ImportState:
    """What earlier runs finished: files done, and how far into each NDJSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, Any] = (json.loads(path.read_text())
                                      if path.exists() else {"done": [], "lines": {}})

    def done(self, source: Path) -> bool:
        return str(source.resolve()) in self._data["done"]

    def line(self, source: Path) -> int:
        return int(self._data["lines"].get(str(source.resolve()), 0))

    def mark_line(self, source: Path, line: int) -> None:
        self._data["lines"][str(source.resolve())] = line
        self._save()

    def mark_done(self, source: Path) -> None:
        self._data["done"].append(str(source.resolve()))
        self._data["lines"].pop(str(source.resolve()), None)
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self._data))
        partial.replace(self.path)


async def import_path(settings: Settings, path: Path, *, state_path: Path | None = None,
                      chunk: int = 500, stream: TextIO = sys.stderr) -> ImportReport:
    """Load what ``path`` holds; the report counts loaded, skipped and failed per type."""
    files = source_files(path)
    state = ImportState(state_path or settings.data_dir / "import-state.json")
    report = ImportReport()
    progress = Progress(sum(file.stat().st_size for file in files), stream)
    app = create_app(settings, migrate=settings.is_sqlite)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://import",
            timeout=3600) as http:
        importer = Importer(http, set(app.state.services.repositories), report, chunk=chunk)
        for file in files:
            size = file.stat().st_size
            if state.done(file):
                report.resumed += 1
                progress.advance(size, sum(report.loaded.values()), f"{file.name} (done before)")
                continue
            if file.suffix.lower() == ".ndjson":
                for line, entries in importer.ndjson_chunks(file, state.line(file)):
                    await importer.send(entries)
                    state.mark_line(file, line)
            else:
                await importer.bundle_file(file)
            state.mark_done(file)
            report.files += 1
            progress.advance(size, sum(report.loaded.values()), file.name)
    progress.close()
    return report
