"""after_commit: a wake-up call waits for the unit of work's commit, and is dropped with a
rollback; outside a unit it runs at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.unit_of_work import after_commit, unit_of_work


def test_outside_a_unit_it_runs_at_once() -> None:
    called: list[str] = []
    after_commit(lambda: called.append("now"))
    assert called == ["now"]


def test_inside_a_unit_it_waits_for_the_commit_and_a_rollback_drops_it(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'unit.sqlite3'}")
        called: list[str] = []
        async with unit_of_work(engine) as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
            after_commit(lambda: called.append("committed"))
            assert called == []
        with pytest.raises(RuntimeError):
            async with unit_of_work(engine):
                after_commit(lambda: called.append("rolled back"))
                raise RuntimeError("undo")
        await engine.dispose()
        return called

    assert asyncio.run(scenario()) == ["committed"]
