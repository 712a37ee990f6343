"""Candidates for Patient matching, found through the ``patient_match_keys`` index (never a
table scan), and how common a family name is (for term-frequency weights)."""

from __future__ import annotations

import time

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import patient_match_keys, patients
from storage.unit_of_work import reading

FREQUENCY_TTL_SECONDS = 300.0
TF_MIN_PATIENTS = 1000
"""Below this many patients name shares are too noisy to weigh by: none are given."""
EXACT_COUNT_BELOW = 100_000
"""Below this many patients (by the planner's estimate) they are counted exactly."""


async def candidate_ids(engine: AsyncEngine, keys: list[str], *, limit: int,
                        exclude: str | None = None) -> tuple[list[str], bool]:
    """(ids of patients sharing any key, most shared keys first; truncated). An index-only
    scan of ``patient_match_keys``: deleted and merged patients are left out when their rows
    are loaded."""
    if not keys:
        return [], False
    hits = func.count().label("hits")
    statement = (
        select(patient_match_keys.c.patient_id, hits)
        .where(patient_match_keys.c.key.in_(keys))
        .group_by(patient_match_keys.c.patient_id)
        .order_by(hits.desc(), patient_match_keys.c.patient_id)
        .limit(limit + 2))
    async with reading(engine) as connection:
        ids = [row[0] for row in await connection.execute(statement)]
    ids = [patient_id for patient_id in ids if patient_id != exclude]
    return ids[:limit], len(ids) > limit


class FamilyFrequencies:
    """Share of patients with a family name, from the key index; cached for a while (the
    shares move slowly), with the patient count from the planner's estimate on PostgreSQL.
    Small populations give no shares (the default weights apply)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._cache: dict[str, tuple[float, float]] = {}
        self._total: tuple[float, int] | None = None

    async def shares(self, family_keys: set[str]) -> dict[str, float]:
        now = time.monotonic()
        wanted = [key for key in family_keys
                  if key not in self._cache or now - self._cache[key][0] > FREQUENCY_TTL_SECONDS]
        if wanted:
            total = await self._patient_count(now)
            if total < TF_MIN_PATIENTS:
                return {}
            async with reading(self._engine) as connection:
                counts: dict[str, int] = dict((await connection.execute(
                    select(patient_match_keys.c.key, func.count())
                    .where(patient_match_keys.c.key.in_(wanted))
                    .group_by(patient_match_keys.c.key))).all())
            for key in wanted:
                self._cache[key] = (now, counts.get(key, 0) / total)
        return {key: self._cache[key][1] for key in family_keys}

    async def _patient_count(self, now: float) -> int:
        if self._total is not None and now - self._total[0] < FREQUENCY_TTL_SECONDS:
            return self._total[1]
        async with reading(self._engine) as connection:
            if connection.dialect.name == "postgresql":
                estimate = (await connection.execute(text(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = 'patients'"
                ))).scalar()
                count = int(estimate or 0)
                if count < EXACT_COUNT_BELOW:  # small or never analysed: count exactly
                    count = (await connection.execute(
                        select(func.count()).select_from(patients))).scalar_one()
            else:
                count = (await connection.execute(
                    select(func.count()).select_from(patients))).scalar_one()
        count = max(int(count), 1)
        self._total = (now, count)
        return count
