"""Run a compiled search: one keyset-paged query for the ids of the page, one for their rows,
and a count when the total is asked for (or known for free on a single page). _include and
_revinclude cross types through the ``SearchSource`` of each served type."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.search.query import Include, SearchRequest
from mappings.search_backing import SearchParameter
from storage.keyset import SortKey, beyond, decode_token, encode_token, order_by
from storage.row_set import RowSet
from storage.search_sql import SearchSql
from storage.unit_of_work import reading

MAX_INCLUDED = 1000
"""At most this many resources are added by _include/_revinclude to one page, unless the
catalog says otherwise (``FHIR_INCLUDE_MAX``)."""
MAX_ITERATIONS = 4


class RowLoader(Protocol):
    async def select_many(self, resource_ids: list[str]) -> list[RowSet]:
        """The current rows (main row and child rows, references included) of these ids."""


@runtime_checkable
class PageLoader(Protocol):
    async def select_page(
        self, statement: Select[Any], *, search_rows: bool
    ) -> list[tuple[list[Any], RowSet]]:
        """(columns of the page query, rows) per result, in the query's order, in one
        round trip (the PostgreSQL fast path); token and reference rows only when
        ``search_rows``."""


@dataclass(frozen=True)
class SearchSource:
    """What a search needs of one served type: its compiler, its row loader and its mapping."""

    sql: SearchSql
    rows: RowLoader
    to_resource: Callable[[RowSet], dict[str, Any]]
    parameters: dict[str, SearchParameter]

    @property
    def resource_type(self) -> str:
        return self.sql.resource_type


@dataclass
class SearchCatalog:
    """The search sources of every served type, shared by their repositories (chains,
    _has, _include and _revinclude cross types through it)."""

    sources: dict[str, SearchSource] = field(default_factory=dict)
    compilers: dict[str, SearchSql] = field(default_factory=dict)
    include_limit: int = MAX_INCLUDED
    """Most resources _include / _revinclude add to one page (``FHIR_INCLUDE_MAX``)."""

    def add(self, source: SearchSource) -> None:
        self.sources[source.resource_type] = source
        self.compilers[source.resource_type] = source.sql

    def registry(self) -> dict[str, dict[str, SearchParameter]]:
        """Search parameters by type, as the query parser takes them."""
        return {name: source.parameters for name, source in self.sources.items()}


@dataclass(frozen=True)
class SearchPage:
    resources: list[dict[str, Any]]
    next_token: str | None
    previous_token: str | None
    total: int | None
    included: list[dict[str, Any]]
    included_cut: bool = False


async def run_search(
    engine: AsyncEngine, source: SearchSource, request: SearchRequest,
    sources: Mapping[str, SearchSource], *, default_conditions: Sequence[Any] = (),
    include_limit: int = MAX_INCLUDED, fence_sort: bool = False,
) -> SearchPage:
    """One page; ``default_conditions`` apply unless a clause names the same thing (the caller
    decides: Patient leaves merged patients out unless ``merged`` is searched; it also says
    when to ``fence_sort``, see ``keyset.order_by``). At most
    ``include_limit`` resources are included; when more were wanted, ``included_cut`` says so
    on the page and on the request's controls (which the search interaction reads, whatever
    wraps the repository)."""
    sql = source.sql
    main = sql.main
    conditions = [main.c.deleted_at.is_(None), *default_conditions,
                  *(sql.condition(c) for c in request.clauses)]
    controls = request.controls
    keys = [SortKey(main.c[column], descending) for column, descending in controls.sort]
    keys.append(SortKey(main.c.id, False))
    token = decode_token(controls.page, keys) if controls.page else None
    forward = token.forward if token else True
    count = controls.count
    want_total = controls.total in ("accurate", "estimate") or controls.summary == "count" \
        or count == 0

    boundaries: list[Any] = []
    fetched: dict[str, RowSet] | None = None
    if count > 0 and controls.summary != "count":
        statement = (select(*(key.column for key in keys))
                     .where(*conditions, *([beyond(keys, token)] if token else []))
                     .order_by(*order_by(keys, forward, fenced=fence_sort)).limit(count + 1))
        if isinstance(source.rows, PageLoader):
            page = await source.rows.select_page(statement,
                                                 search_rows=bool(controls.includes))
            boundaries = [columns for columns, _ in page]
            fetched = {rows.main["id"]: rows for _, rows in page}
        else:
            async with reading(engine) as connection:
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
    total = None
    if token is None and not more and count > 0 and controls.summary != "count":
        total = len(boundaries)  # every match is on this first page: no count needed
    elif want_total:
        async with reading(engine) as connection:
            total = (await connection.execute(
                select(func.count()).select_from(main).where(*conditions))).scalar_one()
    ids = [boundary[-1] for boundary in boundaries]
    by_id = fetched if fetched is not None else {
        rows.main["id"]: rows for rows in await source.rows.select_many(ids)}
    matched = [by_id[i] for i in ids if i in by_id]
    included, cut = await _included(engine, source, sources, controls.includes, matched,
                                    limit=include_limit)
    controls.included_cut = controls.included_cut or cut
    return SearchPage([source.to_resource(rows) for rows in matched], next_token,
                      previous_token, total, included, cut)


async def _included(
    engine: AsyncEngine, source: SearchSource, sources: Mapping[str, SearchSource],
    includes: list[Include], matched: list[RowSet], *, limit: int,
) -> tuple[list[dict[str, Any]], bool]:
    """Resources _include / _revinclude add to the page (``:iterate`` repeats on them), at
    most ``limit``, and whether more were wanted."""
    seen = {(source.resource_type, rows.main["id"]) for rows in matched}
    frontier = [(source.resource_type, rows) for rows in matched]
    included: list[dict[str, Any]] = []
    cut = False
    for round_number in range(MAX_ITERATIONS):
        active = [i for i in includes if round_number == 0 or i.iterate]
        if not active or not frontier:
            break
        wanted: set[tuple[str, str]] = set()
        for include in active:
            if include.reverse:
                referring = await _referring(engine, sources, include, frontier, limit)
                cut |= len(referring) > limit
                wanted |= referring
            else:
                params = _row_params(sources, include)
                wanted |= {(include.target_type, ref["target_id"])
                           for resource_type, rows in frontier
                           if resource_type == include.source_type
                           for ref in rows.children.get("references", [])
                           if ref["param"] in params
                           and ref["target_type"] == include.target_type and ref["target_id"]}
        wanted -= seen
        seen |= wanted
        fresh: list[tuple[str, RowSet]] = []
        for resource_type, wanted_ids in _by_type(sorted(wanted)).items():
            room = limit - len(included) - len(fresh)
            target = sources.get(resource_type)
            if target is None:
                continue
            if room < len(wanted_ids):
                cut = True
            if room <= 0:
                continue
            fresh += [(resource_type, rows)
                      for rows in await target.rows.select_many(wanted_ids[:room])
                      if rows.main["deleted_at"] is None]
        included += [sources[resource_type].to_resource(rows) for resource_type, rows in fresh]
        frontier = fresh
    return included, cut


def _row_params(sources: Mapping[str, SearchSource], include: Include) -> tuple[str, ...]:
    """The ``param`` values of the reference rows that hold ``include``'s parameter."""
    source = sources.get(include.source_type)
    backing = source.sql.stored_as(include.parameter) if source is not None else None
    return backing.stored_as if backing is not None else (include.parameter,)


def _by_type(keys: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for resource_type, resource_id in keys:
        grouped.setdefault(resource_type, []).append(resource_id)
    return grouped


async def _referring(
    engine: AsyncEngine, sources: Mapping[str, SearchSource], include: Include,
    frontier: list[tuple[str, RowSet]], limit: int,
) -> set[tuple[str, str]]:
    """Who refers to the frontier: at most ``limit + 1`` (one more tells the page is cut)."""
    referrer = sources.get(include.source_type)
    targets = [rows.main["id"] for resource_type, rows in frontier
               if resource_type == include.target_type]
    if referrer is None or not targets:
        return set()
    sql = referrer.sql
    refs, main = sql.children["references"], sql.main
    owner = refs.c[sql.owner]
    statement = (select(owner).join(main, main.c.id == owner)
                 .where(main.c.deleted_at.is_(None),
                        sql.reference_rows(refs, include.parameter),
                        refs.c.target_type == include.target_type,
                        refs.c.target_id.in_(targets))
                 .limit(limit + 1))
    async with reading(engine) as connection:
        return {(include.source_type, row[0]) for row in await connection.execute(statement)}
