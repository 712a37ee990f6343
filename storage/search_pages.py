"""Run a compiled search: one keyset-paged query for the ids of the page, one for their rows,
and a count when the total is asked for (or known for free on a single page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.search.query import Include, SearchRequest
from storage.keyset import SortKey, beyond, decode_token, encode_token, order_by
from storage.patient_rows import PatientRowStore
from storage.row_set import RowSet
from storage.search_sql import PatientSearchSql

MAX_INCLUDED = 1000
"""At most this many resources are added by _include/_revinclude to one page."""
MAX_ITERATIONS = 4


@dataclass(frozen=True)
class SearchPage:
    rows: list[RowSet]
    next_token: str | None
    previous_token: str | None
    total: int | None
    included: list[RowSet]


async def run_search(
    engine: AsyncEngine, store: PatientRowStore, sql: PatientSearchSql, request: SearchRequest
) -> SearchPage:
    main = sql.main
    conditions = [main.c.deleted_at.is_(None), *(sql.condition(c) for c in request.clauses)]
    controls = request.controls
    keys = [SortKey(main.c[column], descending) for column, descending in controls.sort]
    keys.append(SortKey(main.c.id, False))
    token = decode_token(controls.page, keys) if controls.page else None
    forward = token.forward if token else True
    count = controls.count
    want_total = controls.total in ("accurate", "estimate") or controls.summary == "count" \
        or count == 0

    async with engine.connect() as connection:
        total = None
        if want_total:
            total = (await connection.execute(
                select(func.count()).select_from(main).where(*conditions))).scalar_one()
        boundaries: list[Any] = []
        if count > 0 and controls.summary != "count":
            statement = (select(*(key.column for key in keys))
                         .where(*conditions, *([beyond(keys, token)] if token else []))
                         .order_by(*order_by(keys, forward)).limit(count + 1))
            boundaries = [list(row) for row in await connection.execute(statement)]
    more = len(boundaries) > count
    boundaries = boundaries[:count]
    if not forward:
        boundaries.reverse()
    next_token = previous_token = None
    if boundaries:
        if more or not forward:
            next_token = encode_token(True, boundaries[-1])
        if (forward and token is not None) or (not forward and more):
            previous_token = encode_token(False, boundaries[0])
    if total is None and token is None and not more:
        total = len(boundaries)
    ids = [boundary[-1] for boundary in boundaries]
    by_id = {rows.main["id"]: rows for rows in await store.select_many(ids)}
    matched = [by_id[i] for i in ids if i in by_id]
    included = await _included(engine, store, sql, request.controls.includes, matched)
    return SearchPage(matched, next_token, previous_token, total, included)


async def _included(
    engine: AsyncEngine, store: PatientRowStore, sql: PatientSearchSql,
    includes: list[Include], matched: list[RowSet],
) -> list[RowSet]:
    """Resources _include / _revinclude add to the page (``:iterate`` repeats on them)."""
    seen = {rows.main["id"] for rows in matched}
    frontier, included = matched, list[RowSet]()
    for round_number in range(MAX_ITERATIONS):
        active = [i for i in includes if round_number == 0 or i.iterate]
        if not active or not frontier:
            break
        wanted: set[str] = set()
        for include in active:
            if include.reverse:
                wanted |= await _referring(engine, sql, include, frontier)
            else:
                wanted |= {ref["target_id"] for rows in frontier
                           for ref in rows.children.get("references", [])
                           if ref["param"] == include.parameter
                           and ref["target_type"] == include.target_type and ref["target_id"]}
        wanted -= seen
        room = MAX_INCLUDED - len(included)
        fresh = [rows for rows in await store.select_many(sorted(wanted)[:room])
                 if rows.main["deleted_at"] is None]
        included.extend(fresh)
        seen |= wanted
        frontier = fresh
    return included


async def _referring(
    engine: AsyncEngine, sql: PatientSearchSql, include: Include, frontier: list[RowSet]
) -> set[str]:
    refs, main = sql.children["references"], sql.main
    statement = (select(refs.c.patient_id).join(main, main.c.id == refs.c.patient_id)
                 .where(main.c.deleted_at.is_(None), refs.c.param == include.parameter,
                        refs.c.target_type == include.target_type,
                        refs.c.target_id.in_([rows.main["id"] for rows in frontier]))
                 .limit(MAX_INCLUDED))
    async with engine.connect() as connection:
        return {row[0] for row in await connection.execute(statement)}
