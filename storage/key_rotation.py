"""Re-encrypt every stored ciphertext under the first key of ``FHIR_ENCRYPTION_KEYS``
(``fhir-server rotate-keys``).

Where ciphertexts live: every column named ``*_ciphertext`` (today ``patients.ssn_ciphertext``
and ``patient_identifiers.value_ciphertext``), and the same columns inside the version
history's JSON snapshots (``resource_history.snapshot``), which vread and history decrypt.

The rotation walks each of them in primary-key order, a batch at a time. A batch is read,
re-encrypted in memory (``MultiFernet.rotate``) and written in its own transaction, each row
only while it still holds the ciphertext that was read (compare-and-set): a row a server
rewrote in the meantime keeps what the server wrote. Values already under the first key are
left alone, so a run that stops half-way is resumed by running the command again, and a
second run finds nothing to do. Servers keep serving throughout: they decrypt with every key
listed, so run the rotation only once every process has the new key first (otherwise a
concurrent write may still use the old key; a later run rotates it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Column, Table, and_, select, tuple_, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from fhir_server.settings import Settings
from storage.crypto import load_fernets
from storage.database import create_engine
from storage.schema import metadata
from storage.tables import resource_history
from storage.unit_of_work import reading

CIPHERTEXT_SUFFIX = "_ciphertext"
DEFAULT_BATCH = 500
WRITE_ATTEMPTS = 5
"""Attempts at one batch's transaction when PostgreSQL reports a deadlock or serialization
failure against a concurrent server transaction."""


@dataclass
class TargetCounts:
    """What the rotation did to one column."""

    name: str
    examined: int = 0
    rotated: int = 0
    current: int = 0
    changed: int = 0
    unreadable: int = 0


@dataclass
class RotationReport:
    """Counts per column, in the order the columns were walked."""

    targets: list[TargetCounts] = field(default_factory=list)

    @property
    def unreadable(self) -> int:
        return sum(target.unreadable for target in self.targets)

    @property
    def rotated(self) -> int:
        return sum(target.rotated for target in self.targets)

    def table(self) -> str:
        """A plain-text table: one line per column and a total."""
        header = ("column", "examined", "rotated", "already current", "changed meanwhile",
                  "unreadable")
        rows: list[tuple[object, ...]] = [
            (t.name, t.examined, t.rotated, t.current, t.changed, t.unreadable)
            for t in self.targets]
        rows.append(("total", *(sum(int(str(row[index])) for row in rows)
                                for index in range(1, len(header)))))
        widths = [max(len(str(row[index])) for row in [header, *rows])
                  for index in range(len(header))]
        lines = ["  ".join(str(cell).ljust(widths[0]) if index == 0
                           else f"{cell:,}".rjust(widths[index]) if isinstance(cell, int)
                           else str(cell).rjust(widths[index])
                           for index, cell in enumerate(row))
                 for row in [header, *rows]]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Target:
    """One column holding ciphertexts: the value itself, or JSON with ``*_ciphertext`` keys."""

    table: Table
    column: Column[Any]
    is_json: bool

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"

    @property
    def key(self) -> list[Column[Any]]:
        return list(self.table.primary_key.columns)


def ciphertext_targets() -> list[_Target]:
    """Every ``*_ciphertext`` column of the schema, then the history snapshots."""
    targets = [_Target(table, column, is_json=False)
               for table in metadata.sorted_tables for column in table.columns
               if column.name.endswith(CIPHERTEXT_SUFFIX)]
    targets.append(_Target(resource_history, resource_history.c.snapshot, is_json=True))
    return targets


class _Unreadable(Exception):
    """No configured key decrypts the value."""


class KeyRotation:
    """Rotates one database's ciphertexts to the first of ``keys``."""

    def __init__(self, engine: AsyncEngine, keys: Sequence[Fernet], *,
                 batch_size: int = DEFAULT_BATCH,
                 after_read: Callable[[str], Awaitable[None]] | None = None) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._engine = engine
        self._primary = keys[0]
        self._all = MultiFernet(list(keys))
        self._batch_size = batch_size
        self._after_read = after_read

    async def run(self, *, progress: Callable[[TargetCounts], None] | None = None
                  ) -> RotationReport:
        report = RotationReport()
        for target in ciphertext_targets():
            counts = TargetCounts(target.name)
            report.targets.append(counts)
            await self._rotate_target(target, counts, progress)
        return report

    async def _rotate_target(self, target: _Target, counts: TargetCounts,
                             progress: Callable[[TargetCounts], None] | None) -> None:
        after: tuple[Any, ...] | None = None
        while True:
            rows = await self._read_batch(target, after)
            if not rows:
                return
            after = tuple(rows[-1][: len(target.key)])
            if self._after_read is not None:
                await self._after_read(target.name)
            changes = self._plan(target, rows, counts)
            if changes:
                counts.changed += await self._write(target, changes, counts)
            if progress is not None:
                progress(counts)

    async def _read_batch(self, target: _Target,
                          after: tuple[Any, ...] | None) -> list[Sequence[Any]]:
        conditions: list[ColumnElement[bool]] = [target.column.is_not(None)]
        if target.is_json:
            conditions.append(target.column.contains(f'{CIPHERTEXT_SUFFIX}":"',
                                                      autoescape=True))
        if after is not None:
            conditions.append(tuple_(*target.key) > tuple_(*after))
        query = (select(*target.key, target.column).where(and_(*conditions))
                 .order_by(*target.key).limit(self._batch_size))
        async with reading(self._engine) as connection:  # no write lock while looking
            result = await connection.execute(query)
            return [tuple(row) for row in result]

    def _plan(self, target: _Target, rows: list[Sequence[Any]],
              counts: TargetCounts) -> list[tuple[tuple[Any, ...], str, str]]:
        """(key, old value, new value) for the rows holding a value not under the first key."""
        changes = []
        width = len(target.key)
        for row in rows:
            key, old = tuple(row[:width]), str(row[width])
            counts.examined += 1
            try:
                new = self._rotate_json(old) if target.is_json else self._rotate_token(old)
            except _Unreadable:
                counts.unreadable += 1
                continue
            if new is None:
                counts.current += 1
            else:
                changes.append((key, old, new))
        return changes

    def _rotate_token(self, token: str) -> str | None:
        """The token re-encrypted under the first key, None when it already is."""
        data = token.encode("ascii")
        try:
            self._primary.decrypt(data)
            return None
        except InvalidToken:
            pass
        try:
            return self._all.rotate(data).decode("ascii")
        except InvalidToken as exc:
            raise _Unreadable from exc

    def _rotate_json(self, text: str) -> str | None:
        """The snapshot with each ciphertext under the first key, None when all already are.
        Tokens are replaced in the text (base64 needs no JSON escaping), so every other
        byte of the snapshot stays as it was."""
        replaced = text
        for token in set(_ciphertexts(orjson.loads(text))):
            new = self._rotate_token(token)
            if new is not None:
                replaced = replaced.replace(token, new)
        return None if replaced == text else replaced

    async def _write(self, target: _Target, changes: list[tuple[tuple[Any, ...], str, str]],
                     counts: TargetCounts) -> int:
        """Writes the batch in one transaction; answers how many rows had changed meanwhile."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                async with self._engine.begin() as connection:
                    missed = 0
                    for key, old, new in changes:
                        statement = (
                            update(target.table)
                            .where(*(column == value for column, value in zip(target.key, key,
                                                                                strict=True)),
                                   target.column == old)
                            .values({target.column.name: new}))
                        result = await connection.execute(statement)
                        if result.rowcount == 0:
                            missed += 1
                counts.rotated += len(changes) - missed
                return missed
            except DBAPIError as error:
                if attempt + 1 == WRITE_ATTEMPTS or not _is_transient(error):
                    raise
        raise AssertionError("unreachable")


def _ciphertexts(value: Any) -> Iterator[str]:
    """Every string under a ``*_ciphertext`` key, at any depth."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name.endswith(CIPHERTEXT_SUFFIX) and isinstance(item, str):
                yield item
            else:
                yield from _ciphertexts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _ciphertexts(item)


def _is_transient(error: DBAPIError) -> bool:
    """A PostgreSQL deadlock (40P01) or serialization failure (40001): the batch is retried."""
    return getattr(error.orig, "sqlstate", None) in ("40P01", "40001")


async def rotate_keys(settings: Settings, *, batch_size: int = DEFAULT_BATCH,
                      progress: Callable[[TargetCounts], None] | None = None) -> RotationReport:
    """Rotates the configured database to the first key of ``FHIR_ENCRYPTION_KEYS``."""
    engine = create_engine(settings)
    try:
        rotation = KeyRotation(engine, load_fernets(settings), batch_size=batch_size)
        return await rotation.run(progress=progress)
    finally:
        await engine.dispose()
