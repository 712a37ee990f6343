"""Prometheus metrics at ``GET /metrics`` (text format 0.0.4), one ``CollectorRegistry`` per
app so each app (and each test) counts alone. Not behind FHIR auth; no label holds a value a
client chose except the HTTP method (bounded to the standard ones).

- ``fhir_http_requests_total`` and ``fhir_http_request_duration_seconds``: by ``method``,
  ``route`` (template, ``unmatched`` when none), ``resource_type`` (served types only) and
  ``status``, from the access-log layer's records.
- ``fhir_db_pool_connections`` (``state`` in_use / idle / max) and
  ``fhir_db_pool_waiting``: by ``pool`` (``sqlalchemy``; ``psycopg`` on PostgreSQL), read
  from the pools at scrape time.
- ``fhir_messages`` by ``channel`` and ``state``, ``fhir_dispatcher_lag_seconds`` (age of
  the oldest due queued message), ``fhir_blob_bytes`` and ``fhir_blobs``: aggregates read
  at scrape time; ``fhir_metrics_database_up`` is 0 when that read failed.
- ``fhir_match_duration_seconds`` and ``fhir_match_candidates_scored``: each ``$match``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.errors import NotFound
from fhir_server.http.request_log import RequestRecord
from storage.operations_stats import OperationsSnapshot, operations_snapshot
from storage.stored import now

logger = logging.getLogger("fhir_server")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_LABELS = ("method", "route", "resource_type", "status")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CANDIDATE_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(frozen=True)
class PoolUsage:
    in_use: int
    idle: int
    max: int
    waiting: int


PoolReader = Callable[[], PoolUsage | None]


class ServerMetrics:
    """The app's registry, what feeds it, and what the scrape refreshes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = Counter("fhir_http_requests", "HTTP requests answered",
                                 REQUEST_LABELS, registry=self.registry)
        self._latency = Histogram("fhir_http_request_duration_seconds",
                                  "Time from request to the end of the response",
                                  REQUEST_LABELS, buckets=LATENCY_BUCKETS, registry=self.registry)
        self._match_seconds = Histogram("fhir_match_duration_seconds", "Patient $match time",
                                        buckets=LATENCY_BUCKETS, registry=self.registry)
        self._match_candidates = Histogram("fhir_match_candidates_scored",
                                           "Candidates one Patient $match scored",
                                           buckets=CANDIDATE_BUCKETS, registry=self.registry)
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self._pools: dict[str, PoolReader] = {}
        self._snapshot: OperationsSnapshot | None = None
        self._database_up = False
        self._scraped_at: datetime | None = None
        self.registry.register(_ScrapeTimeCollector(self))

    def observe_request(self, record: RequestRecord) -> None:
        """Count one request (the access-log layer calls this for every response)."""
        key = (record.method if record.method in METHODS else "other",
               record.route or "unmatched", record.resource_type or "", str(record.status))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self._requests.labels(*key),
                                              self._latency.labels(*key))
        children[0].inc()
        children[1].observe(record.duration)

    def observe_match(self, seconds: float, candidates: int) -> None:
        self._match_seconds.observe(seconds)
        self._match_candidates.observe(candidates)

    def watch_pool(self, name: str, reader: PoolReader) -> None:
        self._pools[name] = reader

    async def refresh(self, engine: AsyncEngine, *, now: datetime) -> None:
        """Read the scrape-time aggregates; a failure is reported, not raised."""
        self._scraped_at = now
        try:
            self._snapshot = await operations_snapshot(engine, now=now)
            self._database_up = True
        except Exception:  # the scrape still answers, with fhir_metrics_database_up 0
            logger.warning("metrics: the database aggregates could not be read", exc_info=True)
            self._database_up = False

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ScrapeTimeCollector(Collector):
    """Gauges computed when scraped: pools, and the last snapshot the endpoint read."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        connections = GaugeMetricFamily("fhir_db_pool_connections",
                                        "Database pool connections", labels=["pool", "state"])
        waiting = GaugeMetricFamily("fhir_db_pool_waiting", "Requests waiting for a connection",
                                    labels=["pool"])
        for name, reader in metrics._pools.items():
            usage = reader()
            if usage is None:
                continue
            for state, value in (("in_use", usage.in_use), ("idle", usage.idle),
                                 ("max", usage.max)):
                connections.add_metric([name, state], value)
            waiting.add_metric([name], usage.waiting)
        yield connections
        yield waiting
        yield GaugeMetricFamily("fhir_metrics_database_up",
                                "1 when the last scrape read the database aggregates",
                                value=1 if metrics._database_up else 0)
        snapshot = metrics._snapshot
        if snapshot is None or not metrics._database_up:
            return
        messages = GaugeMetricFamily("fhir_messages", "Outbox messages by channel and state",
                                     labels=["channel", "state"])
        for (channel, state), count in sorted(snapshot.messages.items()):
            messages.add_metric([channel, state], count)
        yield messages
        lag = 0.0
        if snapshot.oldest_due is not None and metrics._scraped_at is not None:
            lag = max((metrics._scraped_at - snapshot.oldest_due).total_seconds(), 0.0)
        yield GaugeMetricFamily("fhir_dispatcher_lag_seconds",
                                "Age of the oldest due queued message (0: none waiting)",
                                value=lag)
        yield GaugeMetricFamily("fhir_blob_bytes", "Bytes of stored file content (blobs)",
                                value=snapshot.blob_bytes)
        yield GaugeMetricFamily("fhir_blobs", "Stored file contents (blobs)",
                                value=snapshot.blob_count)


def watch_pools(metrics: ServerMetrics, engine: AsyncEngine, patient_rows: object) -> None:
    """The engine's pool, and on PostgreSQL the Patient executor's own psycopg pool."""
    metrics.watch_pool("sqlalchemy", sqlalchemy_pool_reader(engine))
    pool = getattr(patient_rows, "_pool", None)  # PsycopgPatientRows keeps it private
    if pool is not None and hasattr(pool, "get_stats"):
        metrics.watch_pool("psycopg", psycopg_pool_reader(pool))


def sqlalchemy_pool_reader(engine: AsyncEngine) -> PoolReader:
    """Usage of the engine's queue pool (None for pools that do not count, e.g. SQLite's)."""
    pool: Any = engine.sync_engine.pool

    def read() -> PoolUsage | None:
        if not all(hasattr(pool, name) for name in ("checkedout", "checkedin", "size")):
            return None
        overflow = max(int(getattr(pool, "_max_overflow", 0)), 0)
        return PoolUsage(in_use=pool.checkedout(), idle=pool.checkedin(),
                         max=pool.size() + overflow, waiting=0)

    return read


def psycopg_pool_reader(pool: Any) -> PoolReader:
    """Usage of a psycopg_pool pool from its ``get_stats()``."""

    def read() -> PoolUsage | None:
        stats = pool.get_stats()
        size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
        return PoolUsage(in_use=size - available, idle=available,
                         max=stats.get("pool_max", 0), waiting=stats.get("requests_waiting", 0))

    return read


async def metrics_endpoint(request: Request) -> Response:
    services = request.app.state.services
    if services.settings.metrics_port:
        raise NotFound("Metrics are served on their own port (FHIR_METRICS_PORT), not here")
    exposition = await scrape(request.app.state.metrics, services.engine)()
    return Response(exposition, media_type=CONTENT_TYPE_PLAIN_0_0_4)


def scrape(metrics: ServerMetrics, engine: AsyncEngine) -> Callable[[], Awaitable[bytes]]:
    """The exposition the separate metrics port answers with."""

    async def exposition() -> bytes:
        await metrics.refresh(engine, now=now())
        return metrics.exposition()

    return exposition


def metrics_routes() -> list[Route]:
    return [Route("/metrics", metrics_endpoint, methods=["GET"])]
