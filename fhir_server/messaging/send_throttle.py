"""Per-client rate limit on bulk sends (``FHIR_SEND_RATE_LIMIT`` recipients per minute): each
write of an active CommunicationRequest that sends is charged its recipients; a client over
its budget gets 429 with ``Retry-After`` and an OperationOutcome ``throttled``.

A token bucket per client: it holds at most a minute's budget and refills continuously. A
request passes when the bucket holds its recipients (or, for a request larger than the whole
budget, when the bucket is full) and may leave it in debt, which later requests wait out: over
time no client addresses more than the budget per minute. Buckets live in the process (each
worker process counts alone).

Who the client is comes from the request being served: the request-limits layer sets
:func:`current_client` with a key function of the ASGI scope (the client address today; the
token's client id once authentication provides it). Writes outside a request (the worker, the
import command's own code) are not charged."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from fhir_server.errors import Issue, TooManyRequests

WINDOW_SECONDS = 60.0
MAX_TRACKED_CLIENTS = 10_000

ClientKey = Callable[[], str]
"""The current request's client key, computed when first needed (after authentication)."""

_current_client: ContextVar[ClientKey | None] = ContextVar("fhir_send_client", default=None)


def serve_client(key: ClientKey) -> None:
    """Names the client of the request being served (its task and the tasks it starts)."""
    _current_client.set(key)


def current_client() -> str | None:
    key = _current_client.get()
    return key() if key is not None else None


@dataclass
class _Bucket:
    tokens: float
    updated: float


class SendThrottle:
    """Token buckets of ``limit`` recipients per minute, one per client key; 0 turns it off."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._rate = limit / WINDOW_SECONDS
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def charge(self, recipients: int, client: str | None = None) -> None:
        """Takes ``recipients`` from the client's bucket, or TooManyRequests saying when to
        retry. ``client`` defaults to the current request's."""
        client = client if client is not None else current_client()
        if self._limit <= 0 or client is None or recipients <= 0:
            return
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._buckets[client] = _Bucket(float(self._limit), now)
        bucket.tokens = min(float(self._limit),
                            bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        needed = float(min(recipients, self._limit))
        if bucket.tokens < needed:
            wait = max(1, math.ceil((needed - bucket.tokens) / self._rate))
            message = (f"Too many messages: this client may address {self._limit} recipients "
                       f"per minute (FHIR_SEND_RATE_LIMIT); this request has {recipients}. "
                       f"Retry after {wait} seconds")
            raise TooManyRequests(message, issues=[Issue(message, code="throttled")],
                                  headers={"Retry-After": str(wait)})
        bucket.tokens -= recipients

    def _forget_idle(self, now: float) -> None:
        """Drops the buckets that have refilled (they hold nothing worth remembering)."""
        if len(self._buckets) < MAX_TRACKED_CLIENTS:
            return
        for client, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self._rate >= self._limit:
                del self._buckets[client]
