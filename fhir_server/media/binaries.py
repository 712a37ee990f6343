"""FHIR Binary over the blob store: uploads stream to a staged blob while hashing, pass the
media policy, and are committed under their SHA-256 in the same database transaction as the
Binary version, so the same bytes are stored once. A blob is removed when no live Binary uses
it any more (unless FHIR_BLOB_RETAIN_UNUSED keeps it). https://hl7.org/fhir/R4/binary.html"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fhir_server.errors import Gone, InvalidResource, Issue
from fhir_server.media.policy import MediaPolicy
from fhir_server.media.store_failures import store_failures_answered
from fhir_server.merging.guard import MergedInto, refuse_merged_references
from fhir_server.search.query import SearchRequest
from mappings.binary import BINARY_SEARCH, BinaryContent, BinaryMapping
from mappings.search_backing import SearchParameter
from storage.blob_removal import lock_blob, remove_unused_blobs
from storage.blobs import BlobEmpty, BlobInfo, BlobMissing, BlobStore, BlobTooLarge, StagedBlob
from storage.mapped_repository import MappedRepository
from storage.media_tables import binaries, blobs
from storage.resource_rows import InTransaction
from storage.stored import SearchResults, StoredResource, now
from storage.unit_of_work import active_connection, reading, when_committed, when_rolled_back

CHUNK = 256 * 1024


@dataclass(frozen=True)
class BinaryFile:
    """What a raw read needs: the Binary version and where its bytes are."""

    stored: StoredResource
    content_type: str
    sha256: str
    size: int
    security_context: str | None


async def _chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start:start + CHUNK]


@dataclass(frozen=True)
class StagedBinary:
    """Received bytes (staged in the blob store) and the Binary they will become."""

    resource: dict[str, Any]
    blob: StagedBlob


class BinaryRepository:
    """Binary as a ResourceRepository (FHIR JSON with base64 ``data``) plus raw-byte uploads
    and reads."""

    def __init__(self, mapped: MappedRepository, store: BlobStore, policy: MediaPolicy,
                 *, retain_unused: bool, merged_into: MergedInto) -> None:
        self._mapped = mapped
        self._merged_into = merged_into
        self.store = store
        self.policy = policy
        self._retain_unused = retain_unused
        self._mapping = BinaryMapping()

    @property
    def resource_type(self) -> str:
        return "Binary"

    @property
    def search_parameters(self) -> dict[str, SearchParameter]:
        return BINARY_SEARCH

    # ------------------------------------------------------------------- reads

    async def read(self, resource_id: str) -> StoredResource:
        return await self._mapped.read(resource_id)

    async def vread(self, resource_id: str, version_id: int) -> StoredResource:
        return await self._mapped.vread(resource_id, version_id)

    async def history(self, *, resource_id: str | None, since: datetime | None, count: int,
                      offset: int, at: tuple[datetime, datetime] | None = None
                      ) -> tuple[int, list[StoredResource]]:
        return await self._mapped.history(resource_id=resource_id, since=since, count=count,
                                          offset=offset, at=at)

    async def search(self, request: SearchRequest) -> SearchResults:
        return await self._mapped.search(request)

    async def find(self, query: str) -> list[str]:
        return await self._mapped.find(query)

    async def file(self, resource_id: str) -> BinaryFile:
        """The current version's content facts (NotFound / Gone as read). The resource is
        built from the main row alone (the child tables hold search values only)."""
        rows = await self._mapped.current_rows(resource_id, children=False)
        main = rows.main
        return BinaryFile(
            StoredResource(main["id"], main["version_id"], main["last_updated"],
                           self._mapping.to_resource(rows)),
            main["content_type"], main["sha256"], int(main["size"]), main["security_context"])

    async def with_data(self, stored: StoredResource, sha256: str | None = None) -> dict[str, Any]:
        """The resource with its bytes as base64 ``data`` (the FHIR representation)."""
        assert stored.resource is not None
        if sha256 is None:
            sha256 = (await self.file(stored.resource_id)).sha256
        try:
            with store_failures_answered():
                parts = [chunk async for chunk in self.store.open(sha256, chunk_size=CHUNK * 4)]
        except BlobMissing:
            raise Gone(f"Binary/{stored.resource_id}: the content is no longer kept") from None
        return stored.resource | {"data": base64.b64encode(b"".join(parts)).decode()}

    async def file_version(self, resource_id: str, version_id: int) -> BinaryFile:
        """The content facts of one version (NotFound / Gone as vread)."""
        rows = await self._mapped.version_rows(resource_id, version_id)
        main = rows.main
        stored = self._mapped.stored(rows)
        return BinaryFile(stored, main["content_type"], main["sha256"], int(main["size"]),
                          main["security_context"])

    async def sha1_of(self, sha256: str) -> str:
        """The base64 SHA-1 of stored bytes (FHIR Attachment.hash), kept with the blob."""
        async with reading(self._mapped.rows.engine) as connection:
            found = (await connection.execute(
                select(blobs.c.sha1_base64).where(blobs.c.sha256 == sha256))).scalar()
        if found is None:
            raise Gone(f"The content {sha256[:12]}... is no longer kept")
        return str(found)

    # ------------------------------------------------------------------ writes

    async def create(self, resource: dict[str, Any], *,
                     resource_id: str | None = None) -> StoredResource:
        """From FHIR JSON: ``data`` (base64) holds the bytes."""
        return await self._create(resource, await self._stage_json(resource), resource_id)

    async def update(self, resource_id: str, resource: dict[str, Any], *,
                     if_match: int | None) -> tuple[StoredResource, bool]:
        staged = await self._stage_json(resource)
        return await self._update(resource_id, resource, staged, if_match)

    async def create_stream(self, content_type: str | None, chunks: AsyncIterable[bytes], *,
                            security_context: str | None) -> StoredResource:
        return await self.create_staged(
            await self.stage_stream(content_type, chunks, security_context))

    async def update_stream(self, resource_id: str, content_type: str | None,
                            chunks: AsyncIterable[bytes], *, security_context: str | None,
                            if_match: int | None) -> tuple[StoredResource, bool]:
        staged = await self.stage_stream(content_type, chunks, security_context)
        return await self.update_staged(resource_id, staged, if_match=if_match)

    async def stage_stream(self, content_type: str | None, chunks: AsyncIterable[bytes],
                           security_context: str | None) -> StagedBinary:
        """The bytes received and checked, not yet a Binary: ``create_staged`` or
        ``update_staged`` makes them one (in a short transaction of its own, so a slow
        upload holds no database transaction)."""
        resource, staged = await self._stage_stream(content_type, chunks, security_context)
        try:  # a large transfer outside any transaction, unless the content is held already
            with store_failures_answered():
                await self.store.preplace(staged,
                                          unless=lambda: self._recorded(staged.info.sha256))
        except BaseException:
            await self._remove_preplaced(staged)
            raise
        return StagedBinary(resource, staged)

    async def _recorded(self, sha256: str) -> bool:
        """Whether a blob row holds this content (a look, no lock: ``_claim`` decides)."""
        async with reading(self._mapped.rows.engine) as connection:
            return (await connection.execute(
                select(blobs.c.sha256).where(blobs.c.sha256 == sha256))).first() is not None

    async def _remove_preplaced(self, staged: StagedBlob) -> None:
        if staged.preplaced:
            await self._remove(self._mapped.rows.engine, [staged.info.sha256])

    async def create_staged(self, staged: StagedBinary) -> StoredResource:
        return await self._create(staged.resource, staged.blob)

    async def update_staged(self, resource_id: str, staged: StagedBinary, *,
                            if_match: int | None) -> tuple[StoredResource, bool]:
        resource = staged.resource | {"id": resource_id}
        return await self._update(resource_id, resource, staged.blob, if_match)

    async def discard(self, staged: StagedBinary) -> None:
        """Drop staged bytes that will not become a Binary."""
        await self._remove_preplaced(staged.blob)
        await self.store.discard(staged.blob)

    async def create_from_bytes(self, content_type: str, data: bytes, *,
                                security_context: str | None) -> tuple[StoredResource, BlobInfo]:
        """A Binary for inline attachment data; (stored, what its bytes hash to)."""
        resource, staged = await self._stage_stream(content_type, _chunks_of(data),
                                                    security_context)
        return await self._create(resource, staged), staged.info

    async def delete(self, resource_id: str) -> StoredResource | None:
        current = await self._mapped.rows.select(resource_id, children=False)
        sha256 = current.main["sha256"] if current is not None else None
        released: list[str] = []
        stored = await self._mapped.delete(
            resource_id, in_transaction=self._release(sha256, released) if sha256 else None)
        await self._remove_after_commit(released)
        return stored

    async def _create(self, resource: dict[str, Any], staged: StagedBlob,
                      resource_id: str | None = None) -> StoredResource:
        placed = _sent_ahead(staged)
        try:
            with store_failures_answered():
                stored = await self._mapped.create(
                    resource, facts=self._content(staged), resource_id=resource_id,
                    in_transaction=self._claim(staged, None, [], placed))
        except BaseException:
            await self._remove_if_undone(placed, failed=True)
            raise
        finally:
            await self.store.discard(staged)
        await self._remove_if_undone(placed, failed=False)
        return stored

    async def _update(self, resource_id: str, resource: dict[str, Any], staged: StagedBlob,
                      if_match: int | None) -> tuple[StoredResource, bool]:
        released: list[str] = []
        placed = _sent_ahead(staged)
        try:
            current = await self._mapped.rows.select(resource_id, children=False)
            previous = current.main["sha256"] if current is not None else None
            with store_failures_answered():
                result = await self._mapped.update(
                    resource_id, resource, if_match=if_match, facts=self._content(staged),
                    in_transaction=self._claim(staged, previous, released, placed))
        except BaseException:
            await self._remove_if_undone(placed, failed=True)
            raise
        finally:
            await self.store.discard(staged)
        await self._remove_if_undone(placed, failed=False)
        await self._remove_after_commit(released)
        return result

    # ----------------------------------------------------------------- staging

    async def _stage_json(self, resource: dict[str, Any]) -> StagedBlob:
        await refuse_merged_references(resource, self._merged_into)
        data = resource.get("data")
        if not isinstance(data, str) or not data:
            raise InvalidResource(
                "Binary.data is required: this server stores a Binary's bytes",
                issues=[Issue("Binary.data is required", code="required",
                              expression=("Binary.data",))])
        if len(data) > self.policy.max_bytes * 4 // 3 + 8:
            raise self.policy.too_large()
        try:
            content = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidResource("Binary.data is not valid base64", issues=[
                Issue("Binary.data is not valid base64", code="value",
                      expression=("Binary.data",))]) from None
        media_type = self.policy.declared_type(resource.get("contentType"))
        return await self._stage(media_type, _chunks_of(content))

    async def _stage_stream(self, content_type: str | None, chunks: AsyncIterable[bytes],
                            security_context: str | None) -> tuple[dict[str, Any], StagedBlob]:
        media_type = self.policy.declared_type(content_type)
        resource: dict[str, Any] = {"resourceType": "Binary", "contentType": media_type}
        if security_context:
            resource["securityContext"] = {"reference": security_context}
            await refuse_merged_references(resource, self._merged_into)
        staged = await self._stage(media_type, chunks)
        return resource, staged

    async def _stage(self, media_type: str, chunks: AsyncIterable[bytes]) -> StagedBlob:
        try:
            with store_failures_answered():
                staged = await self.store.stage(chunks, max_bytes=self.policy.max_bytes)
        except BlobTooLarge:
            raise self.policy.too_large() from None
        except BlobEmpty:
            raise self.policy.empty() from None
        try:
            self.policy.check_signature(media_type, staged.info.head)
        except Exception:
            await self.store.discard(staged)
            raise
        return staged

    @staticmethod
    def _content(staged: StagedBlob) -> BinaryContent:
        return BinaryContent(staged.info.sha256, staged.info.size)

    # -------------------------------------------------------- blob bookkeeping

    def _claim(self, staged: StagedBlob, previous: str | None, released: list[str],
               placed: list[str] | None = None) -> InTransaction:
        """Inside the version's transaction: hold the blob row (so a concurrent release waits),
        place the bytes under their hash (noted in ``placed`` when they are new content), and
        release the blob the previous version used (noted in ``released``)."""

        async def claim(connection: AsyncConnection) -> None:
            info = staged.info
            await lock_blob(connection, info.sha256)  # a removal of these bytes waits
            row = {"sha256": info.sha256, "size": info.size, "sha1_base64": info.sha1_base64,
                   "detected_type": None, "stored_at": now()}
            insert = (postgresql.insert(blobs) if connection.dialect.name == "postgresql"
                      else sqlite.insert(blobs))
            # A row inserted here is this transaction's (locked until it ends): the content is
            # new to the database, so the store is not asked whether it holds it. A row found
            # is locked too (SQLite writers hold the whole database already).
            new = (await connection.execute(insert.values(row).on_conflict_do_nothing()
                                            .returning(blobs.c.sha256))).first() is not None
            if not new and connection.dialect.name == "postgresql":
                await connection.execute(
                    select(blobs.c.sha256).where(blobs.c.sha256 == info.sha256).with_for_update())
            await self.store.commit(staged, new=new)
            if new and placed is not None and info.sha256 not in placed:
                placed.append(info.sha256)
            if previous and previous != info.sha256:
                await self._release(previous, released)(connection)

        return claim

    async def _remove_after_commit(self, released: list[str]) -> None:
        """The bytes of the blobs the write released, once its transaction has committed."""
        if released:
            engine = self._mapped.rows.engine
            await when_committed(lambda: self._remove(engine, list(released)))

    async def _remove_if_undone(self, placed: list[str], *, failed: bool) -> None:
        """Bytes this write placed as new content go again if the write is undone: now when
        it failed on its own, when the unit of work rolls back inside one (a transaction
        Bundle's later entry failing, a $validate trial)."""
        engine = self._mapped.rows.engine
        if placed and (failed or active_connection(engine) is not None):
            await when_rolled_back(lambda: self._remove(engine, list(placed)))

    async def _remove(self, engine: AsyncEngine, released: list[str]) -> None:
        await remove_unused_blobs(engine, self.store, released)

    def _release(self, sha256: str, released: list[str]) -> InTransaction:
        """Inside the version's transaction: drop the blob row when no live Binary uses the
        blob any more, and note it in ``released`` (its bytes go after the commit)."""
        async def release(connection: AsyncConnection) -> None:
            if self._retain_unused:
                return
            users = (await connection.execute(
                select(func.count()).select_from(binaries)
                .where(binaries.c.sha256 == sha256, binaries.c.deleted_at.is_(None))
            )).scalar_one()
            if users:
                return
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    select(blobs.c.sha256).where(blobs.c.sha256 == sha256).with_for_update())
            await connection.execute(blobs.delete().where(blobs.c.sha256 == sha256))
            released.append(sha256)

        return release


def _sent_ahead(staged: StagedBlob) -> list[str]:
    """The hashes a write placed as new content, starting with bytes sent ahead of it: if
    the write fails, they go again unless a committed row uses them."""
    return [staged.info.sha256] if staged.preplaced else []
