"""A read does not wait for a write transaction in progress, and sees only what was committed:
on SQLite a reading connection begins deferred (a WAL snapshot), not ``BEGIN IMMEDIATE``, which
took the database's one write lock for every read."""

from __future__ import annotations

import asyncio
import contextvars
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.settings import Settings
from storage.database import create_engine
from storage.export_jobs import ExportJob, ExportJobStore
from storage.messaging_tables import message_templates
from storage.unit_of_work import reading, unit_of_work
from tests.conftest import empty_tables

READ_WAIT_SECONDS = 3.0
"""Far below the 10 s a connection waits for SQLite's write lock."""


async def _count(engine: AsyncEngine) -> int:
    async with reading(engine) as connection:
        return int((await connection.execute(
            select(func.count()).select_from(message_templates))).scalar_one())


async def _read_while_a_write_is_open(settings: Settings) -> tuple[int, int]:
    """(count read during an uncommitted insert, count after its commit)."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(engine) as connection:
            moment = datetime(2026, 11, 29, tzinfo=UTC)
            await connection.execute(insert(message_templates).values(
                id="t-1", name="reminder", channel="sms", body="Hi {name}",
                variables='["name"]', active=True, created_at=moment, updated_at=moment))
            # a context of its own: inside this one, reading() would use the unit's connection
            during = asyncio.get_running_loop().create_task(_count(engine),
                                                            context=contextvars.Context())
            seen_during = await asyncio.wait_for(during, READ_WAIT_SECONDS)
        return seen_during, await _count(engine)
    finally:
        await engine.dispose()


def test_a_read_runs_beside_an_open_write_and_sees_only_commits(settings: Settings,
                                                                engine: Engine) -> None:
    empty_tables(engine)
    assert asyncio.run(_read_while_a_write_is_open(settings)) == (0, 1)


async def _look_for_export_work_while_a_write_is_open(settings: Settings) -> ExportJob | None:
    """The export runner's look for a job to claim, during an uncommitted insert."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(engine) as connection:
            moment = datetime(2026, 11, 29, tzinfo=UTC)
            await connection.execute(insert(message_templates).values(
                id="t-2", name="reminder", channel="sms", body="Hi {name}",
                variables='["name"]', active=True, created_at=moment, updated_at=moment))
            look = asyncio.get_running_loop().create_task(
                ExportJobStore(engine).claim_next(owner="runner", now=moment,
                                                  lease=timedelta(minutes=1)),
                context=contextvars.Context())
            return await asyncio.wait_for(look, READ_WAIT_SECONDS)
    finally:
        await engine.dispose()


def test_the_export_runner_looks_for_work_beside_an_open_write(settings: Settings,
                                                              engine: Engine) -> None:
    """Nothing to claim: the runner's look (every few seconds, on every process) answers
    without waiting for the writer."""
    empty_tables(engine)
    assert asyncio.run(_look_for_export_work_while_a_write_is_open(settings)) is None
