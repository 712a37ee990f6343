"""A read does not wait for a write transaction in progress, and sees only what was committed:
on SQLite a reading connection begins deferred (a WAL snapshot), not ``BEGIN IMMEDIATE``, which
took the database's one write lock for every read."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.operations.demographics import demographics
from fhir_server.settings import Settings
from storage.database import create_engine
from storage.export_jobs import ExportJob, ExportJobStore
from storage.key_rotation import KeyRotation
from storage.messaging_tables import message_templates
from storage.unit_of_work import reading, unit_of_work
from tests.conftest import empty_tables

READ_WAIT_SECONDS = 3.0
"""Far below the 10 s a connection waits for SQLite's write lock."""
T = TypeVar("T")


MOMENT = datetime(2026, 11, 29, tzinfo=UTC)


async def _count(engine: AsyncEngine) -> int:
    async with reading(engine) as connection:
        return int((await connection.execute(
            select(func.count()).select_from(message_templates))).scalar_one())


async def _during_an_open_write(settings: Settings,
                                look: Callable[[AsyncEngine], Coroutine[Any, Any, T]]) -> T:
    """What ``look`` answers while another transaction holds an uncommitted insert (it must
    answer within ``READ_WAIT_SECONDS``); the insert is committed afterwards."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(engine) as connection:
            await connection.execute(insert(message_templates).values(
                id="t-1", name="reminder", channel="sms", body="Hi {name}",
                variables='["name"]', active=True, created_at=MOMENT, updated_at=MOMENT))
            # a context of its own: inside this one, reading() would use the unit's connection
            during: asyncio.Task[T] = asyncio.get_running_loop().create_task(
                look(engine), context=contextvars.Context())
            return await asyncio.wait_for(during, READ_WAIT_SECONDS)
    finally:
        await engine.dispose()


async def _count_now(settings: Settings) -> int:
    engine = create_engine(settings)
    try:
        return await _count(engine)
    finally:
        await engine.dispose()


def test_a_read_runs_beside_an_open_write_and_sees_only_commits(settings: Settings,
                                                                engine: Engine) -> None:
    empty_tables(engine)
    assert asyncio.run(_during_an_open_write(settings, _count)) == 0
    assert asyncio.run(_count_now(settings)) == 1


async def _look_for_export_work(engine: AsyncEngine) -> ExportJob | None:
    return await ExportJobStore(engine).claim_next(owner="runner", now=MOMENT,
                                                   lease=timedelta(minutes=1))


def test_the_export_runner_looks_for_work_beside_an_open_write(settings: Settings,
                                                              engine: Engine) -> None:
    """Nothing to claim: the runner's look (every few seconds, on every process) answers
    without waiting for the writer."""
    empty_tables(engine)
    assert asyncio.run(_during_an_open_write(settings, _look_for_export_work)) is None


async def _demographics(engine: AsyncEngine) -> Any:
    return await demographics(engine, today=MOMENT.date())


def test_demographics_scan_the_patients_beside_an_open_write(settings: Settings,
                                                             engine: Engine) -> None:
    """$demographics groups every patient row: on SQLite it used to hold the write lock for
    the whole scan (and wait for it first)."""
    empty_tables(engine)
    answer = asyncio.run(_during_an_open_write(settings, _demographics))
    assert {"name": "total", "valueInteger": 0} in answer["parameter"]


async def _rotation_with_nothing_to_change(engine: AsyncEngine) -> int:
    report = await KeyRotation(engine, [Fernet(Fernet.generate_key())]).run()
    return sum(target.examined for target in report.targets)


def test_key_rotation_looks_for_ciphertexts_beside_an_open_write(settings: Settings,
                                                                 engine: Engine) -> None:
    """Its looks read; only a batch with ciphertexts to change writes."""
    empty_tables(engine)
    assert asyncio.run(_during_an_open_write(settings, _rotation_with_nothing_to_change)) == 0
