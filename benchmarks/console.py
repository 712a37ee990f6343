"""How fast the web console's pages load on the embedded default (SQLite) with 10k patients.

    .venv/bin/python -m benchmarks.console [--patients 10000] [--duplicates 300] [--loads 15]

A fresh data dir; ``fhir-server serve`` on it (SQLite, one worker, the messaging worker off);
``--patients`` synthetic patients (``benchmarks.synthetic_patients``) plus ``--duplicates``
corrupted copies of some of them (``benchmarks.match_data``), all loaded through transaction
Bundles of 500; a few documents and messages for one patient; ``fhir-server match scan`` for the
duplicates queue. Then each page is fetched ``--loads`` times after two warm-up loads, one
after the other from one client: the median, p90 and largest time to the whole HTML (httpx, kept
alive), and with ``/usr/bin/chromium`` present the median time a headless browser takes to load
the page with its stylesheet (navigation start to the load event). Target: under 300 ms.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from benchmarks import synthetic_patients
from benchmarks.match_data import CORRUPTIONS, as_query
from benchmarks.processes import free_port, run_checked, start
from benchmarks.report import format_table
from benchmarks.run import fhir_server_command

REPO = Path(__file__).resolve().parents[1]
HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
TARGET_MS = 300.0
CHUNK = 500
CHROMIUM = Path("/usr/bin/chromium")
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def population(count: int, duplicates: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    people = synthetic_patients.batch(seed, 0, count)
    resources = [person.resource for person in people]
    for person in rng.sample(people, duplicates):
        copy = as_query(person.resource, with_ssn=rng.random() < 0.5)
        for corruption in rng.sample(sorted(CORRUPTIONS), 1):
            CORRUPTIONS[corruption](copy, rng)
        resources.append(copy)
    rng.shuffle(resources)
    return resources


def load(http: httpx.Client, resources: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for start_at in range(0, len(resources), CHUNK):
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}",
             "resource": {key: value for key, value in resource.items() if key != "id"},
             "request": {"method": "POST", "url": "Patient"}}
            for resource in resources[start_at:start_at + CHUNK]]}
        response = http.post("/fhir", json=bundle, timeout=300)
        response.raise_for_status()
        print(f"\rloaded {min(start_at + CHUNK, len(resources)):,}/{len(resources):,}",
              end="", file=sys.stderr)
    print(file=sys.stderr)
    return time.perf_counter() - started


def add_documents_and_messages(http: httpx.Client, patient_id: str) -> None:
    subject = {"reference": f"Patient/{patient_id}"}
    channel = [{"coding": [{"system": "urn:prm:message-channel", "code": "sms"}]}]
    for number in range(5):
        http.post("/fhir/DocumentReference", json={
            "resourceType": "DocumentReference", "status": "current", "subject": subject,
            "description": f"Scan {number}", "date": f"2024-0{number + 1}-01T10:00:00Z",
            "content": [{"attachment": {"contentType": "application/pdf",
                                        "data": base64.b64encode(PDF).decode()}}]},
            headers=HEADERS).raise_for_status()
        http.post("/fhir/Communication", json={
            "resourceType": "Communication", "status": "completed", "subject": subject,
            "recipient": [subject], "medium": channel, "sent": f"2024-0{number + 1}-02T09:00:00Z",
            "payload": [{"contentString": f"Reminder {number}"}]},
            headers=HEADERS).raise_for_status()
    for number in range(3):
        http.post("/fhir/CommunicationRequest", json={
            "resourceType": "CommunicationRequest", "status": "active", "subject": subject,
            "recipient": [subject], "medium": channel,
            "occurrenceDateTime": f"2099-0{number + 1}-01T09:00:00Z",
            "payload": [{"contentString": f"Upcoming visit {number}"}]},
            headers=HEADERS).raise_for_status()


def timed(http: httpx.Client, path: str, loads: int) -> tuple[list[float], int]:
    for _ in range(2):
        http.get(path).raise_for_status()
    times: list[float] = []
    size = 0
    for _ in range(loads):
        started = time.perf_counter()
        response = http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return times, size


def browser_medians(base: str, paths: list[str], loads: int) -> dict[str, float]:
    """Median navigation-to-load time per page in headless Chromium (CSS cached after the
    first load, as for a reviewer going from page to page)."""
    if not CHROMIUM.exists():
        return {}
    from playwright.sync_api import sync_playwright

    found: dict[str, float] = {}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for path in paths:
            page.goto(base + path)
            times = []
            for _ in range(loads):
                page.goto(base + path)
                times.append(page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return n.loadEventEnd - n.startTime; }"))
            found[path] = statistics.median(times)
        browser.close()
    return found


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--duplicates", type=int, default=300)
    parser.add_argument("--loads", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="console-bench-"))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("FHIR_")} | {
        "FHIR_DATA_DIR": str(work / "var"), "FHIR_LOG_LEVEL": "warning",
        "FHIR_MESSAGING_WORKER": "false", "FHIR_BUNDLE_MAX_BYTES": str(256 * 1024 * 1024)}
    exe = str(fhir_server_command())
    port = free_port()
    server = start("fhir-server", [exe, "serve", "--host", "127.0.0.1", "--port", str(port)],
                   env, REPO, work / "server.log", port)
    try:
        server.wait_ready()
        base = server.url
        with httpx.Client(base_url=base, headers=HEADERS, timeout=60) as http:
            resources = population(args.patients, args.duplicates, args.seed)
            seconds = load(http, resources)
            print(f"loaded {len(resources):,} patients in {seconds:.1f} s", file=sys.stderr)
            family = resources[0]["name"][0]["family"]
            birth_date = resources[0]["birthDate"]
            phone = next(t["value"] for t in resources[0]["telecom"] if t["system"] == "phone")
            found = http.get("/fhir/Patient", params={"family": family,
                                                      "birthdate": birth_date}).json()
            patient_id = found["entry"][0]["resource"]["id"]
            mrn = next(i["value"] for i in found["entry"][0]["resource"]["identifier"]
                       if i.get("system") == "urn:prm:mrn")
            add_documents_and_messages(http, patient_id)
        started = time.perf_counter()
        run_checked([exe, "match", "scan", "--output", str(work / "var" / "match-scan.csv")],
                    env, REPO, timeout=3600)
        scan_seconds = time.perf_counter() - started
        pairs = (work / "var" / "match-scan.csv").read_text().splitlines()[1:]
        first, second = pairs[0].split(",")[:2]
        print(f"match scan: {len(pairs):,} pairs in {scan_seconds:.1f} s", file=sys.stderr)
        pages = [
            ("search: name", f"/console/patients?name={family}"),
            ("search: name + birth date", f"/console/patients?name={family}&birthdate={birth_date}"),
            ("search: phone", f"/console/patients?phone={quote(phone)}"),
            ("search: identifier (MRN)", f"/console/patients?identifier={mrn}"),
            ("patient page", f"/console/patients/{patient_id}"),
            ("duplicates queue", "/console/duplicates"),
            ("comparison", f"/console/compare/{first}/{second}"),
            ("merge preview", f"/console/merge?source={second}&target={first}"),
        ]
        with httpx.Client(base_url=base, timeout=60) as http:
            for name, path in pages[:4]:
                assert f"/console/patients/{patient_id}" in http.get(path).text, name
            measured = [(name, path, *timed(http, path, args.loads)) for name, path in pages]
        browser = browser_medians(base, [path for _, path in pages], max(args.loads // 3, 5))
    finally:
        server.stop()

    lines = []
    for name, _path, times, size in measured:
        median = statistics.median(times)
        in_browser = browser.get(_path)
        worst = max(median, in_browser or 0.0)
        lines.append([name, f"{median:.0f}", f"{_percentile(times, 0.9):.0f}",
                      f"{max(times):.0f}",
                      f"{in_browser:.0f}" if in_browser is not None else "-",
                      f"{size / 1024:.1f}", "yes" if worst < TARGET_MS else "NO"])
    print(f"console pages, SQLite, {len(resources):,} patients ({args.patients:,} + "
          f"{args.duplicates} duplicates), {len(pairs):,} pairs in the queue, "
          f"{args.loads} loads each, {os.cpu_count()} CPUs")
    print(format_table(["page", "median ms", "p90 ms", "max ms", "browser load ms", "KiB",
                        f"< {TARGET_MS:.0f} ms?"], lines, left={0}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
