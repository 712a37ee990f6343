"""The export runner: a task inside each ``fhir-server serve`` process that claims waiting jobs
one at a time, writes their NDJSON files to the blob store and removes jobs that were cancelled
or have been kept long enough.

A job is read a page at a time and each file streamed into the store as it is written (memory
holds one page, a Binary's bytes pass through in chunks). Each file is recorded with the
checkpoint after it in one transaction, so a job whose process died (its lease runs out after
LEASE) or stopped (the lease is given back) is resumed by the next runner from its last
complete file; the file being written when it stopped is written again. Pages renew the lease
(every RENEW_SECONDS at most): a renewal that finds the job cancelled stops it, and its files
are removed."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import MultiFernet

from fhir_server.bulk_export.ndjson import line, line_with_data, sealed
from fhir_server.bulk_export.reader import ExportReader, masked_if
from storage.blob_removal import remove_unused_blobs
from storage.blobs import BlobEmpty, BlobStore, StagedBlob
from storage.export_jobs import (
    CANCELLED,
    ERROR,
    OUTPUT,
    Checkpoint,
    ExportJob,
    ExportJobStore,
    FileToAdd,
)

logger = logging.getLogger("fhir_server.bulk_export")

LEASE = timedelta(seconds=60)
RENEW_SECONDS = 2.0
"""Pages renew the lease (and record progress, and find out about a cancellation) at most
this often."""
REMOVAL_SECONDS = 60.0
"""How often a runner looks for finished exports past their keep time and cancelled jobs
nobody runs (a DELETE removes a finished export's files itself)."""
UNLIMITED_BYTES = 1 << 62
MAX_ERRORS_PER_FILE = 1000
FAILED_MESSAGE = "The export failed on the server; the failure is logged. Start a new export."


class Stopped(Exception):
    """The job may not go on here: cancelled, taken over, or the server is stopping."""


def outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


@dataclass
class _File:
    """The file being written: where its type's next page starts, what it holds so far."""

    token: str | None
    count: int = 0
    done: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_left_out: int = 0

    def error(self, item: dict[str, Any]) -> None:
        if len(self.errors) < MAX_ERRORS_PER_FILE:
            self.errors.append(item)
        else:
            self.errors_left_out += 1


class ExportRunner:
    def __init__(self, *, jobs: ExportJobStore, reader: ExportReader, store: BlobStore,
                 fernet: MultiFernet | None, page_size: int, file_resources: int,
                 keep: timedelta, poll_seconds: float, clock: Callable[[], datetime]) -> None:
        self._jobs = jobs
        self.reader = reader
        self._store = store
        self._fernet = fernet
        self._page_size = max(1, page_size)
        self._file_resources = max(1, file_resources)
        self._keep = keep
        self._poll_seconds = poll_seconds
        self._clock = clock
        self.owner = uuid.uuid4().hex
        self.wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._renewed = 0.0

    @property
    def seals(self) -> bool:
        """Whether files are encrypted at rest by the server (not on S3: presigned URLs hand
        the stored bytes to the client, and S3 encrypts them itself)."""
        return self._fernet is not None

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set; a failed pass is logged and retried. A pass
        looks for files to remove only every ``REMOVAL_SECONDS`` (they are kept for hours):
        polling for them every few seconds was most of an idle server's CPU."""
        self._stopping = stop
        removal_due = 0.0
        while not stop.is_set():
            self.wake.clear()
            moment = time.monotonic()
            try:
                await self.run_pending(remove=moment >= removal_due)
                if moment >= removal_due:
                    removal_due = moment + REMOVAL_SECONDS
            except Exception:
                logger.exception("bulk export pass failed; retrying")
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            await asyncio.wait(waiters, timeout=self._poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def run_pending(self, *, remove: bool = True) -> None:
        """Remove what is due for removal (unless not ``remove``), then run every job
        waiting, oldest first."""
        for job_id in await self._jobs.removable(now=self._clock(), keep=self._keep) \
                if remove else ():
            await self.remove(job_id)
        while not self._stopping.is_set():
            job = await self._jobs.claim_next(owner=self.owner, now=self._clock(), lease=LEASE)
            if job is None:
                return
            await self._run_job(job)

    async def remove(self, job_id: str) -> None:
        """The job, its file rows and the blobs no other job uses."""
        await remove_unused_blobs(self._jobs.engine, self._store, await self._jobs.remove(job_id))

    async def _run_job(self, job: ExportJob) -> None:
        try:
            await self._run(job)
        except Stopped:
            current = await self._jobs.get(job.id)
            if self._stopping.is_set() and current is not None \
                    and current.status != CANCELLED:
                await self._jobs.release(job.id, owner=self.owner)
            elif current is not None and current.status == CANCELLED:
                await self.remove(job.id)
        except Exception:
            logger.exception("bulk export %s failed", job.id)
            await self._jobs.fail(job.id, owner=self.owner, error=FAILED_MESSAGE,
                                  now=self._clock())

    async def _renew(self, job: ExportJob, exported: int, planned: int | None = None, *,
                     now: bool = True) -> None:
        """Extend the lease and record progress (unless ``now`` is False and it was done less
        than RENEW_SECONDS ago); Stopped when the job may not go on."""
        if self._stopping.is_set():
            raise Stopped()
        moment = time.monotonic()
        if not now and moment - self._renewed < RENEW_SECONDS:
            return
        if not await self._jobs.renew(job.id, owner=self.owner, until=self._clock() + LEASE,
                                      exported=exported, planned=planned):
            raise Stopped()
        self._renewed = moment

    async def _run(self, job: ExportJob) -> None:
        checkpoint = job.checkpoint
        if job.planned is None:
            planned = 0
            for kind in job.types:
                planned += await self.reader.count(job, kind)
                await self._renew(job, checkpoint.exported)
            await self._renew(job, checkpoint.exported, planned)
        for index in range(checkpoint.type_index, len(job.types)):
            kind = job.types[index]
            token = checkpoint.token if index == checkpoint.type_index else None
            while True:
                current = _File(token)
                staged = await self._stage(self._lines(job, kind, current,
                                                       committed=checkpoint.exported))
                errors = await self._stage(self._error_lines(current)) if current.errors \
                    else None
                checkpoint = Checkpoint(index + 1 if current.done else index,
                                        None if current.done else current.token,
                                        checkpoint.exported + current.count)
                files = [*([FileToAdd(OUTPUT, kind, staged.info.sha256, current.count,
                                      staged.info.size, self.seals)] if staged else []),
                         *([FileToAdd(ERROR, "OperationOutcome", errors.info.sha256,
                                      len(current.errors) + min(current.errors_left_out, 1),
                                      errors.info.size, self.seals)] if errors else [])]
                await self._record(job, files, [staged, errors], checkpoint)
                if current.done:
                    break
                token = current.token
        left_out = None
        if job.left_out:
            left_out = await self._stage(self._outcome_lines([outcome(
                "warning", "forbidden", "Not exported, the access token may not search them: "
                + ", ".join(job.left_out))]))
        files = [FileToAdd(ERROR, "OperationOutcome", left_out.info.sha256, 1,
                           left_out.info.size, self.seals)] if left_out else []
        await self._record(job, files, [left_out], checkpoint, finish=True)

    async def _record(self, job: ExportJob, files: list[FileToAdd],
                      staged: list[StagedBlob | None], checkpoint: Checkpoint, *,
                      finish: bool = False) -> None:
        """The files and the checkpoint after them, then their bytes into the store (a file
        row is written before its blob, so a removal never misses a blob being placed)."""
        if not await self._jobs.add_files(job.id, owner=self.owner, files=files,
                                          checkpoint=checkpoint, finish=finish,
                                          now=self._clock()):
            for blob in staged:
                if blob is not None:
                    await self._store.discard(blob)
            raise Stopped()
        for blob in staged:
            if blob is not None:
                await self._store.commit(blob)

    async def _stage(self, chunks: AsyncIterable[bytes]) -> StagedBlob | None:
        """The chunks staged as one file (sealed when the store is local); None when empty."""
        try:
            return await self._store.stage(
                sealed(chunks, self._fernet) if self._fernet is not None else chunks,
                max_bytes=UNLIMITED_BYTES)
        except BlobEmpty:
            return None

    async def _lines(self, job: ExportJob, kind: str, current: _File, *,
                     committed: int) -> AsyncIterator[bytes]:
        """One file's lines of ``kind``, page by page from ``current.token``, until the file
        is full or the type is done; each page renews the lease."""
        while current.count < self._file_resources:
            wanted = min(self._page_size, self._file_resources - current.count)
            page = await self.reader.page(job, kind, token=current.token, count=wanted)
            if kind == "Binary":
                async for chunk in self._binaries(page.resources, current):
                    yield chunk
            else:
                yield b"".join(line(masked_if(resource, reveal=job.reveal_ssn))
                               for resource in page.resources)
            current.count += len(page.resources)
            current.token = page.next_token
            await self._renew(job, committed + current.count, now=False)
            if page.next_token is None:
                current.done = True
                return
            await asyncio.sleep(0)  # let requests in between pages

    async def _binaries(self, resources: list[dict[str, Any]],
                        current: _File) -> AsyncIterator[bytes]:
        """Binaries with their bytes as ``data``; one whose bytes are gone is exported
        without them and named in the error file."""
        hashes = await self.reader.binary_hashes([resource["id"] for resource in resources])
        for resource in resources:
            sha256 = hashes.get(resource["id"])
            if sha256 is None or not await self._store.exists(sha256):
                current.error(outcome("error", "not-found",
                                      f"Binary/{resource['id']}: its content is no longer "
                                      "kept; exported without data"))
                yield line(resource)
                continue
            async for chunk in line_with_data(resource, self._store.open(sha256)):
                yield chunk

    async def _error_lines(self, current: _File) -> AsyncIterator[bytes]:
        items = list(current.errors)
        if current.errors_left_out:
            items.append(outcome("error", "too-costly", f"{current.errors_left_out} more "
                                 "errors of this file are not listed"))
        async for chunk in self._outcome_lines(items):
            yield chunk

    @staticmethod
    async def _outcome_lines(items: list[dict[str, Any]]) -> AsyncIterator[bytes]:
        yield b"".join(line(item) for item in items)
