"""SQLAlchemy Core statements turned into driver SQL for a raw psycopg connection, compiled
once per statement shape.

SQLAlchemy caches compilation when it executes a statement itself; code that hands the SQL
text to psycopg directly (the Patient fast path) would otherwise compile the same search
shape on every request (about 7 % of a search's CPU). The cache key is SQLAlchemy's own
(structure, not values); the values of a request are taken from that key's bound parameters,
and expanding ``IN`` lists are rendered for each execution.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

CACHE_SIZE = 500


class CompiledSqlCache:
    """Driver SQL and parameters for statements of one dialect (an LRU of compilations)."""

    def __init__(self, dialect: Dialect, size: int = CACHE_SIZE) -> None:
        self._dialect = dialect
        self._size = size
        self._compiled: OrderedDict[Any, SQLCompiler] = OrderedDict()

    def render(self, statement: ClauseElement) -> tuple[str, dict[str, Any]]:
        """The SQL text and parameters to run ``statement`` with."""
        key = statement._generate_cache_key()
        if key is None:  # an element that cannot be cached: compile this once
            compiled = statement.compile(dialect=self._dialect,
                                         compile_kwargs={"render_postcompile": True})
            return compiled.string, dict(compiled.params)
        compiled_shape = self._compiled.get(key.key)
        if compiled_shape is None:
            compiled_shape = statement.compile(  # type: ignore[assignment]
                dialect=self._dialect, cache_key=key)
            assert isinstance(compiled_shape, SQLCompiler)
            self._compiled[key.key] = compiled_shape
            if len(self._compiled) > self._size:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key.key)
        parameters = compiled_shape.construct_params(extracted_parameters=key.bindparams)
        state = compiled_shape.construct_expanded_state(parameters)
        return state.statement, dict(state.parameters)
