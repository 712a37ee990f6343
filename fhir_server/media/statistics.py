"""``DocumentReference/$stats``: the PRM's storage statistics from SQL aggregates over the live
media assets: files, bytes, bytes saved by deduplication, counts by source, category and
content type, average size. Answered as a FHIR Parameters resource (byte counts as decimals:
FHIR integers stop at 2^31)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.media_tables import blobs, media_assets
from storage.unit_of_work import reading


async def document_statistics(engine: AsyncEngine) -> dict[str, Any]:
    live = media_assets.c.deleted_at.is_(None)
    with_file = (live, media_assets.c.sha256.is_not(None))
    async with reading(engine) as connection:
        files, logical = (await connection.execute(
            select(func.count(), func.coalesce(func.sum(media_assets.c.file_size), 0))
            .where(*with_file))).one()
        stored = (await connection.execute(
            select(func.coalesce(func.sum(blobs.c.size), 0)).where(blobs.c.sha256.in_(
                select(media_assets.c.sha256).where(*with_file).distinct())))).scalar_one()
        groups = {}
        for name, column in (("bySource", media_assets.c.source),
                             ("byCategory", media_assets.c.category),
                             ("byContentType", media_assets.c.content_type)):
            result = await connection.execute(
                select(column, func.count()).where(live).group_by(column).order_by(column))
            groups[name] = [(value or "unknown", count) for value, count in result]
    parameters: list[dict[str, Any]] = [
        {"name": "fileCount", "valueInteger": files},
        {"name": "bytes", "valueDecimal": int(logical)},
        {"name": "bytesStored", "valueDecimal": int(stored)},
        {"name": "bytesSavedByDeduplication",
         "valueDecimal": int(logical) - int(stored)},
        {"name": "averageSize",
         "valueDecimal": round(int(logical) / files, 1) if files else 0},
    ]
    for name, counts in groups.items():
        parameters += [{"name": name, "part": [{"name": "value", "valueString": value},
                                               {"name": "count", "valueInteger": count}]}
                       for value, count in counts]
    return {"resourceType": "Parameters", "parameter": parameters}
