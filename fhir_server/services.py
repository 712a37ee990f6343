"""What the request handlers share, built once per app: settings, engine, repositories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.settings import Settings
from storage.patient_repository import PatientRepository


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    patients: PatientRepository
    capability_statement: dict[str, Any]
