"""What the request handlers share, built once per app: settings, engine, repositories."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.interactions.repository import ResourceRepository
from fhir_server.messaging.dispatcher import Dispatcher
from fhir_server.operations.match import PatientMatcher
from fhir_server.operations.merge import MergeService
from fhir_server.security.tokens import TokenVerifier
from fhir_server.settings import Settings
from mappings.search_backing import SearchParameter
from storage.audit_store import AuditTrail
from storage.patient_repository import PatientRepository
from storage.template_store import TemplateStore

if TYPE_CHECKING:
    from fhir_server.bulk_export.service import BulkExports


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    patients: PatientRepository
    capability_statement: dict[str, Any]
    matcher: PatientMatcher
    merger: MergeService
    templates: TemplateStore
    """Message templates (``/messaging/templates``; the dispatcher renders with them)."""
    repositories: dict[str, ResourceRepository] = field(default_factory=dict)
    link_key: bytes = b""
    """Signs the server's own download links (``/download/{token}``)."""
    dispatcher: Dispatcher | None = None
    verifier: TokenVerifier | None = None
    """Checks Bearer tokens; None when no authorisation is configured (FHIR_AUTH_*)."""
    audit_trail: AuditTrail | None = None
    """Where AuditEvents go; None when FHIR_AUDIT is off."""
    exports: BulkExports | None = None
    """Bulk Data export jobs (``$export``), set once the repositories exist."""

    def __post_init__(self) -> None:
        self.repositories.setdefault("Patient", self.patients)

    @property
    def search_registry(self) -> dict[str, dict[str, SearchParameter]]:
        """Search parameters by served type (chains and _has cross types through it)."""
        return {name: repository.search_parameters
                for name, repository in self.repositories.items()}
