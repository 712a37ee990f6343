"""The durable state of Bulk Data export jobs (``bulk_export_jobs`` and their files): created at
kick-off, claimed under a lease by one process's runner, checkpointed at each file it writes,
finished, cancelled and removed. Every change that depends on who runs the job is one
conditional UPDATE, so two processes never run the same job and a cancelled job takes no
new file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.blob_removal import lock_blob
from storage.export_tables import bulk_export_files, bulk_export_jobs
from storage.media_tables import blobs
from storage.unit_of_work import reading

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "queued", "in-progress", "completed", "failed", "cancelled")
OUTPUT, ERROR = "output", "error"


@dataclass(frozen=True)
class Checkpoint:
    """Where a job resumes: the type (index in its types) and that type's page token at the
    end of the last file it wrote, and how many resources those files hold."""

    type_index: int = 0
    token: str | None = None
    exported: int = 0

    def to_text(self) -> str:
        return orjson.dumps({"i": self.type_index, "t": self.token,
                             "n": self.exported}).decode()

    @classmethod
    def from_text(cls, text: str | None) -> Checkpoint:
        if not text:
            return cls()
        data = orjson.loads(text)
        return cls(int(data["i"]), data["t"], int(data["n"]))


@dataclass(frozen=True)
class NewJob:
    """What a kick-off asked for (the job's identity and its decisions)."""

    id: str
    level: str
    request_url: str
    types: tuple[str, ...]
    left_out: tuple[str, ...]
    since: str | None
    subject: str | None
    reveal_ssn: bool
    transaction_time: datetime


@dataclass(frozen=True)
class ExportJob(NewJob):
    status: str = QUEUED
    created_at: datetime | None = None
    finished_at: datetime | None = None
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    exported: int = 0
    planned: int | None = None
    error: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True)
class ExportFile:
    """One NDJSON file of a job, as the manifest lists it."""

    seq: int
    name: str
    kind: str
    resource_type: str
    sha256: str
    count: int
    size: int
    sealed: bool


@dataclass(frozen=True)
class FileToAdd:
    kind: str
    resource_type: str
    sha256: str
    count: int
    size: int
    sealed: bool


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(part for part in (text or "").split(",") if part)


def _job(row: Any) -> ExportJob:
    return ExportJob(
        id=row.id, level=row.level, request_url=row.request_url, types=_names(row.types),
        left_out=_names(row.left_out), since=row.since, subject=row.subject,
        reveal_ssn=bool(row.reveal_ssn), transaction_time=row.transaction_time,
        status=row.status, created_at=row.created_at, finished_at=row.finished_at,
        checkpoint=Checkpoint.from_text(row.checkpoint), exported=int(row.exported or 0),
        planned=None if row.planned is None else int(row.planned), error=row.error,
        lease_until=row.lease_until)


class ExportJobStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def create(self, job: NewJob, *, now: datetime) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(insert(bulk_export_jobs).values(
                id=job.id, status=QUEUED, level=job.level, request_url=job.request_url,
                types=",".join(job.types), left_out=",".join(job.left_out) or None,
                since=job.since, subject=job.subject, reveal_ssn=job.reveal_ssn,
                transaction_time=job.transaction_time, created_at=now, exported=0))

    async def get(self, job_id: str) -> ExportJob | None:
        async with reading(self._engine) as connection:
            row = (await connection.execute(
                select(bulk_export_jobs).where(bulk_export_jobs.c.id == job_id))).first()
        return None if row is None else _job(row)

    async def files(self, job_id: str) -> list[ExportFile]:
        files = bulk_export_files.c
        async with reading(self._engine) as connection:
            rows = (await connection.execute(
                select(bulk_export_files).where(files.job_id == job_id)
                .order_by(files.seq))).all()
        return [ExportFile(row.seq, row.name, row.kind, row.resource_type, row.sha256,
                           int(row.resource_count), int(row.size), bool(row.sealed))
                for row in rows]

    async def file(self, job_id: str, name: str) -> ExportFile | None:
        return next((item for item in await self.files(job_id) if item.name == name), None)

    # ------------------------------------------------------------- the runner's side

    def _claimable(self, now: datetime) -> Any:
        jobs = bulk_export_jobs.c
        return or_(jobs.status == QUEUED,
                   and_(jobs.status == RUNNING,
                        or_(jobs.lease_until.is_(None), jobs.lease_until < now)))

    async def claim_next(self, *, owner: str, now: datetime,
                         lease: timedelta) -> ExportJob | None:
        """The oldest job waiting (or abandoned: its lease ran out), now leased to ``owner``."""
        jobs = bulk_export_jobs.c
        while True:
            async with reading(self._engine) as connection:  # a look: no write lock
                job_id = (await connection.execute(
                    select(jobs.id).where(self._claimable(now))
                    .order_by(jobs.created_at, jobs.id).limit(1))).scalar()
            if job_id is None:
                return None
            async with self._engine.begin() as connection:
                claimed = await connection.execute(
                    update(bulk_export_jobs)
                    .where(jobs.id == job_id, self._claimable(now))
                    .values(status=RUNNING, lease_owner=owner, lease_until=now + lease))
            if claimed.rowcount == 1:
                return await self.get(job_id)

    def _held(self, job_id: str, owner: str) -> Any:
        jobs = bulk_export_jobs.c
        return and_(jobs.id == job_id, jobs.status == RUNNING, jobs.lease_owner == owner)

    async def renew(self, job_id: str, *, owner: str, until: datetime, exported: int,
                    planned: int | None = None) -> bool:
        """Extend the lease and record progress; False when the job was cancelled or another
        process holds it now."""
        values: dict[str, Any] = {"lease_until": until, "exported": exported}
        if planned is not None:
            values["planned"] = planned
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(bulk_export_jobs).where(self._held(job_id, owner)).values(**values))
        return bool(result.rowcount == 1)

    async def add_files(self, job_id: str, *, owner: str, files: list[FileToAdd],
                        checkpoint: Checkpoint, finish: bool = False,
                        now: datetime | None = None) -> bool:
        """Record files and the checkpoint after them in one transaction (and complete the
        job when ``finish``); False, recording nothing, when the job is no longer held."""
        values: dict[str, Any] = {"checkpoint": checkpoint.to_text(),
                                  "exported": checkpoint.exported}
        if finish:
            values |= {"status": COMPLETED, "finished_at": now, "lease_owner": None,
                       "lease_until": None}
        async with self._engine.begin() as connection:
            held = await connection.execute(
                update(bulk_export_jobs).where(self._held(job_id, owner)).values(**values))
            if held.rowcount != 1:
                return False
            existing = (await connection.execute(
                select(bulk_export_files.c.seq, bulk_export_files.c.resource_type,
                       bulk_export_files.c.kind)
                .where(bulk_export_files.c.job_id == job_id))).all()
            seq = max((row.seq for row in existing), default=0)
            taken = [(row.resource_type, row.kind) for row in existing]
            for item in files:
                await lock_blob(connection, item.sha256)  # a removal of these bytes waits
                seq += 1
                taken.append((item.resource_type, item.kind))
                number = taken.count((item.resource_type, item.kind))
                await connection.execute(insert(bulk_export_files).values(
                    job_id=job_id, seq=seq, name=f"{item.resource_type}-{number}.ndjson",
                    kind=item.kind, resource_type=item.resource_type, sha256=item.sha256,
                    resource_count=item.count, size=item.size, sealed=item.sealed))
        return True

    async def fail(self, job_id: str, *, owner: str, error: str, now: datetime) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(bulk_export_jobs).where(self._held(job_id, owner)).values(
                    status=FAILED, error=error, finished_at=now, lease_owner=None,
                    lease_until=None))

    async def release(self, job_id: str, *, owner: str) -> None:
        """Give the job up (the server is stopping): another start resumes it at once."""
        async with self._engine.begin() as connection:
            await connection.execute(
                update(bulk_export_jobs).where(self._held(job_id, owner))
                .values(lease_owner=None, lease_until=None))

    # ---------------------------------------------------------- cancel and remove

    async def cancel(self, job_id: str) -> str | None:
        """Mark the job cancelled; the status it had (None when unknown or cancelled). The
        change is conditional on the status read, so a runner claiming the job meanwhile is
        seen: the answer is exactly the status the cancellation replaced."""
        jobs = bulk_export_jobs.c
        while True:
            async with self._engine.begin() as connection:
                status = (await connection.execute(
                    select(jobs.status).where(jobs.id == job_id))).scalar()
                if status is None or status == CANCELLED:
                    return None
                changed = await connection.execute(
                    update(bulk_export_jobs).where(jobs.id == job_id, jobs.status == status)
                    .values(status=CANCELLED))
            if changed.rowcount == 1:
                return str(status)

    async def removable(self, *, now: datetime, keep: timedelta) -> list[str]:
        """Jobs whose files may go: cancelled and not being run, or finished over ``keep``
        ago."""
        jobs = bulk_export_jobs.c
        async with reading(self._engine) as connection:
            rows = await connection.execute(select(jobs.id).where(or_(
                and_(jobs.status == CANCELLED,
                     or_(jobs.lease_until.is_(None), jobs.lease_until < now)),
                and_(jobs.status.in_((COMPLETED, FAILED)), jobs.finished_at < now - keep))))
            return [row.id for row in rows]

    async def remove(self, job_id: str) -> list[str]:
        """Delete the job and its file rows; the blobs no other job's file (nor a Binary)
        uses any more: candidates for ``remove_unused_blobs``, which checks again under each
        blob's lock after this commit."""
        files = bulk_export_files.c
        async with self._engine.begin() as connection:
            hashes = sorted({row.sha256 for row in await connection.execute(
                select(files.sha256).where(files.job_id == job_id))})
            await connection.execute(delete(bulk_export_files).where(files.job_id == job_id))
            await connection.execute(delete(bulk_export_jobs)
                                     .where(bulk_export_jobs.c.id == job_id))
            if not hashes:
                return []
            used = {row.sha256 for row in await connection.execute(
                select(files.sha256).where(files.sha256.in_(hashes)).distinct())}
            used |= {row.sha256 for row in await connection.execute(  # a Binary's bytes
                select(blobs.c.sha256).where(blobs.c.sha256.in_(hashes)))}
        return [sha for sha in hashes if sha not in used]
