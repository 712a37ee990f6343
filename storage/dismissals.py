"""Dismissed duplicate pairs (``console_duplicate_dismissals``): a reviewer's 'not a duplicate',
kept for good. A pair is stored once, the smaller id first, whichever way it was named."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.console_tables import console_duplicate_dismissals as dismissals
from storage.unit_of_work import reading

Pair = tuple[str, str]


def ordered(first: str, second: str) -> Pair:
    return (first, second) if first <= second else (second, first)


@dataclass(frozen=True)
class Dismissal:
    first_id: str
    second_id: str
    dismissed_at: datetime
    dismissed_by: str | None


class DismissalStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def dismiss(self, first: str, second: str, *, by: str | None,
                      at: datetime) -> bool:
        """Record the pair; False when it was dismissed already (the first record stays)."""
        low, high = ordered(first, second)
        try:
            async with self._engine.begin() as connection:
                await connection.execute(insert(dismissals).values(
                    first_id=low, second_id=high, dismissed_at=at, dismissed_by=by))
        except IntegrityError:
            return False
        return True

    async def among(self, pairs: Iterable[Pair]) -> set[Pair]:
        """Which of ``pairs`` (any order) were dismissed, as ordered pairs."""
        wanted = sorted({ordered(*pair) for pair in pairs})
        found: set[Pair] = set()
        for start in range(0, len(wanted), 200):
            chunk = wanted[start:start + 200]
            async with reading(self._engine) as connection:
                rows = await connection.execute(
                    select(dismissals.c.first_id, dismissals.c.second_id).where(
                        tuple_(dismissals.c.first_id, dismissals.c.second_id).in_(chunk)))
                found |= {(row[0], row[1]) for row in rows}
        return found

    async def of_patient(self, patient_id: str) -> list[Dismissal]:
        """The dismissals naming this patient, newest first."""
        async with reading(self._engine) as connection:
            rows = await connection.execute(select(dismissals).where(or_(
                dismissals.c.first_id == patient_id, dismissals.c.second_id == patient_id))
                .order_by(dismissals.c.dismissed_at.desc()))
            return [Dismissal(row.first_id, row.second_id, row.dismissed_at, row.dismissed_by)
                    for row in rows]

    async def find(self, first: str, second: str) -> Dismissal | None:
        low, high = ordered(first, second)
        async with reading(self._engine) as connection:
            row = (await connection.execute(select(dismissals).where(
                dismissals.c.first_id == low, dismissals.c.second_id == high))).first()
        return Dismissal(row.first_id, row.second_id, row.dismissed_at,
                         row.dismissed_by) if row else None
