"""The Patient store opened outside the HTTP app, for commands (``match``, ``worker``) and
benchmarks: engine, row executor and repository, closed together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.settings import Settings
from mappings.patient import MappingContext
from storage.crypto import load_cipher
from storage.database import create_engine, open_patient_rows
from storage.patient_repository import PatientRepository


@dataclass(frozen=True)
class PatientStore:
    engine: AsyncEngine
    patients: PatientRepository
    context: MappingContext


@asynccontextmanager
async def open_patient_store(settings: Settings) -> AsyncIterator[PatientStore]:
    engine = create_engine(settings)
    rows = await open_patient_rows(settings, engine)
    try:
        context = MappingContext(cipher=load_cipher(settings),
                                 phone_region=settings.phone_default_region,
                                 mrn_system=settings.mrn_system)
        yield PatientStore(engine, PatientRepository(engine, rows, context), context)
    finally:
        await rows.close()
        await engine.dispose()
