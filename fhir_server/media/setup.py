"""Builds the Binary and DocumentReference repositories over the media tables."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.interactions.repository import ResourceRepository
from fhir_server.media.binaries import BinaryRepository
from fhir_server.media.documents import DocumentReferenceRepository
from fhir_server.media.policy import MediaPolicy
from fhir_server.merging.guard import MergedInto
from fhir_server.settings import Settings
from mappings.binary import BinaryMapping
from mappings.document_reference import DocumentReferenceMapping
from mappings.patient import MappingContext
from storage.blobs import BlobStore
from storage.mapped_repository import MappedRepository
from storage.media_tables import (
    BINARY_CHILD_TABLES,
    MEDIA_ASSET_CHILD_TABLES,
    binaries,
    media_assets,
)
from storage.resource_rows import TableRows
from storage.search_pages import SearchCatalog


def media_repositories(engine: AsyncEngine, catalog: SearchCatalog, context: MappingContext,
                       store: BlobStore, settings: Settings,
                       merged_into: MergedInto) -> dict[str, ResourceRepository]:
    def mapped(rows: TableRows, mapping: BinaryMapping | DocumentReferenceMapping
               ) -> MappedRepository:
        return MappedRepository(engine, rows, mapping, catalog,
                                phone_region=context.phone_region, cipher=context.cipher)

    policy = MediaPolicy(settings.max_upload_bytes, settings.allowed_media_type_set)
    binary_repository = BinaryRepository(
        mapped(TableRows(engine, binaries, BINARY_CHILD_TABLES), BinaryMapping()), store,
        policy, retain_unused=settings.blob_retain_unused, merged_into=merged_into)
    documents = DocumentReferenceRepository(
        mapped(TableRows(engine, media_assets, MEDIA_ASSET_CHILD_TABLES),
               DocumentReferenceMapping()), binary_repository, merged_into)
    return {"Binary": binary_repository, "DocumentReference": documents}
