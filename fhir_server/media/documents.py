"""FHIR DocumentReference over the PRM's media assets. Before a version is written, each
attachment is tied to a Binary: inline ``data`` is stored as a new Binary and answered with its
url; a url pointing at a Binary here gets the size and hash of its bytes (a client hash that
does not match them is refused). https://hl7.org/fhir/R4/documentreference.html"""

from __future__ import annotations

import base64
import binascii
import copy
from datetime import datetime
from typing import Any

from fhir_server.errors import FhirError, InvalidResource, Issue
from fhir_server.media.binaries import BinaryRepository
from fhir_server.merging.guard import MergedInto, refuse_merged_references
from fhir_server.search.query import SearchRequest
from mappings.document_reference import DocumentRuleError, binary_id_of, check_rules
from mappings.document_reference_search import DOCUMENT_REFERENCE_SEARCH
from mappings.search_backing import SearchParameter
from storage.mapped_repository import MappedRepository
from storage.stored import SearchResults, StoredResource


def _invalid(message: str, index: int, element: str = "attachment") -> InvalidResource:
    return InvalidResource(message, issues=[Issue(
        message, code="value",
        expression=(f"DocumentReference.content[{index}].{element}",))])


class DocumentReferenceRepository:
    def __init__(self, mapped: MappedRepository, binaries: BinaryRepository,
                 merged_into: MergedInto) -> None:
        self.mapped = mapped
        self._binaries = binaries
        self._merged_into = merged_into

    @property
    def resource_type(self) -> str:
        return "DocumentReference"

    @property
    def search_parameters(self) -> dict[str, SearchParameter]:
        return DOCUMENT_REFERENCE_SEARCH

    async def read(self, resource_id: str) -> StoredResource:
        return await self.mapped.read(resource_id)

    async def vread(self, resource_id: str, version_id: int) -> StoredResource:
        return await self.mapped.vread(resource_id, version_id)

    async def history(self, *, resource_id: str | None, since: datetime | None, count: int,
                      offset: int, at: tuple[datetime, datetime] | None = None
                      ) -> tuple[int, list[StoredResource]]:
        return await self.mapped.history(resource_id=resource_id, since=since, count=count,
                                         offset=offset, at=at)

    async def search(self, request: SearchRequest) -> SearchResults:
        return await self.mapped.search(request)

    async def find(self, query: str) -> list[str]:
        return await self.mapped.find(query)

    async def create(self, resource: dict[str, Any], *,
                     resource_id: str | None = None) -> StoredResource:
        await refuse_merged_references(resource, self._merged_into)
        resource, sha256_of = await self._tie_attachments(resource)
        return await self.mapped.create(resource, facts=sha256_of, resource_id=resource_id)

    async def update(self, resource_id: str, resource: dict[str, Any], *,
                     if_match: int | None) -> tuple[StoredResource, bool]:
        await refuse_merged_references(resource, self._merged_into)
        resource, sha256_of = await self._tie_attachments(resource)
        return await self.mapped.update(resource_id, resource, if_match=if_match,
                                        facts=sha256_of)

    async def delete(self, resource_id: str) -> StoredResource | None:
        return await self.mapped.delete(resource_id)

    async def first_binary(self, resource_id: str) -> str:
        """The Binary id of the document's first attachment (NotFound / Gone as read)."""
        rows = await self.mapped.current_rows(resource_id)
        binary_id = rows.main["binary_id"]
        if not binary_id:
            raise InvalidResource(f"DocumentReference/{resource_id} has no attachment stored "
                                  "here as a Binary")
        return str(binary_id)

    async def _tie_attachments(
        self, resource: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        try:
            check_rules(resource)
        except DocumentRuleError as exc:
            raise InvalidResource(str(exc), issues=exc.issues) from exc
        resource = copy.deepcopy(resource)
        sha256_of: dict[str, str] = {}
        for index, content in enumerate(resource.get("content") or []):
            attachment = content.get("attachment")
            if not isinstance(attachment, dict):
                continue
            if "data" in attachment:
                binary_id, sha256, sha1, size = await self._store_inline(attachment, index)
            else:
                referenced = binary_id_of(attachment.get("url"))
                if referenced is None:
                    continue
                binary_id = referenced
                sha256, sha1, size = await self._facts_of(binary_id, index)
            client_hash = attachment.get("hash")
            if client_hash is not None and client_hash != sha1:
                raise _invalid(f"content[{index}].attachment.hash does not match the bytes "
                               f"(their SHA-1 is {sha1})", index, "attachment.hash")
            client_size = attachment.get("size")
            if client_size is not None and client_size != size:
                raise _invalid(f"content[{index}].attachment.size {client_size} does not match "
                               f"the {size} bytes stored", index, "attachment.size")
            attachment["size"], attachment["hash"] = size, sha1
            sha256_of[binary_id] = sha256
        return resource, sha256_of

    async def _store_inline(self, attachment: dict[str, Any],
                            index: int) -> tuple[str, str, str, int]:
        data = attachment.pop("data")
        content_type = attachment.get("contentType")
        if not content_type:
            raise _invalid(f"content[{index}].attachment has data but no contentType", index)
        try:
            raw = base64.b64decode("".join(str(data).split()), validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(f"content[{index}].attachment.data is not valid base64",
                           index, "attachment.data") from None
        stored, info = await self._binaries.create_from_bytes(content_type, raw,
                                                              security_context=None)
        attachment["url"] = f"Binary/{stored.resource_id}"
        return stored.resource_id, info.sha256, info.sha1_base64, info.size

    async def _facts_of(self, binary_id: str, index: int) -> tuple[str, str, int]:
        try:
            file = await self._binaries.file(binary_id)
        except FhirError:
            raise _invalid(f"content[{index}].attachment.url points at Binary/{binary_id}, "
                           "which is not stored here", index, "attachment.url") from None
        sha1 = await self._binaries.sha1_of(file.sha256)
        return file.sha256, sha1, file.size
