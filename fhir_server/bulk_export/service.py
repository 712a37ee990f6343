"""The export service one app holds: the job store, the runner, and how a finished job's files
are reached (the server's own ``$export-file`` URL, or a presigned URL on S3)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

from cryptography.fernet import MultiFernet
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.bulk_export.kickoff import EXPORTED_TYPES
from fhir_server.bulk_export.ndjson import unsealed
from fhir_server.bulk_export.reader import ExportReader
from fhir_server.bulk_export.runner import ExportRunner
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.settings import Settings
from storage.blobs import BlobStore
from storage.export_jobs import ExportFile, ExportJobStore
from storage.search_pages import SearchCatalog
from storage.stored import now

NDJSON = "application/fhir+ndjson"
POLL_SECONDS = 10.0
"""How often a runner looks for jobs to run: a kickoff wakes its own process's runner at once,
so the poll only finds jobs a stopped or crashed process left behind."""


@dataclass
class BulkExports:
    jobs: ExportJobStore
    runner: ExportRunner
    store: BlobStore
    fernet: MultiFernet
    types: tuple[str, ...]
    """The types an export holds (of EXPORTED_TYPES, those this server serves)."""
    keep: timedelta
    presign_seconds: int

    @property
    def presigned(self) -> bool:
        """Whether the manifest hands out presigned store URLs (S3) instead of the server's."""
        return self.store.kind == "s3"

    async def url(self, file: ExportFile, *, job_id: str, base_url: str) -> str:
        if self.presigned and not file.sealed:
            url = await self.store.presigned_url(file.sha256, expires_seconds=self.presign_seconds,
                                                 content_type=NDJSON, filename=file.name)
            if url is not None:
                return url
        return f"{base_url}/$export-file/{job_id}/{file.name}"

    def open(self, file: ExportFile) -> AsyncIterator[bytes]:
        """The file's NDJSON bytes (decrypted when sealed)."""
        chunks = self.store.open(file.sha256)
        return unsealed(chunks, self.fernet) if file.sealed else chunks

    async def remove(self, job_id: str) -> None:
        await self.runner.remove(job_id)


def build_exports(settings: Settings, *, engine: AsyncEngine, catalog: SearchCatalog,
                  repositories: Mapping[str, ResourceRepository], store: BlobStore,
                  fernet: MultiFernet) -> BulkExports:
    jobs = ExportJobStore(engine)
    keep = timedelta(seconds=settings.export_keep_seconds)
    runner = ExportRunner(
        jobs=jobs, reader=ExportReader(engine=engine, catalog=catalog, repositories=repositories),
        store=store, fernet=None if store.kind == "s3" else fernet,
        page_size=settings.export_page_size, file_resources=settings.export_file_resources,
        keep=keep, poll_seconds=POLL_SECONDS, clock=now)
    return BulkExports(jobs=jobs, runner=runner, store=store, fernet=fernet,
                       types=tuple(kind for kind in EXPORTED_TYPES if kind in repositories),
                       keep=keep, presign_seconds=settings.presign_seconds)
