"""A blob store's failure (S3 unreachable or refusing, the server's disk full) as the FHIR
answer: 503 ``transient`` with ``Retry-After``, naming the failure's code, never a key or a
path. Raised where the repository meets the store, so a batch Bundle's entry answers 503 on
its own and a transaction rolls back whole; the app answers the same for the download
routes' own store calls."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fhir_server.errors import Unavailable
from storage.blobs import BlobStoreUnavailable

RETRY_AFTER_SECONDS = 5


def unavailable(error: BlobStoreUnavailable) -> Unavailable:
    return Unavailable(f"The file store failed: {error}. The request was not carried out; "
                       "try again later", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@contextmanager
def store_failures_answered() -> Iterator[None]:
    """Turn a store's failure inside the block into its FHIR answer."""
    try:
        yield
    except BlobStoreUnavailable as error:
        raise unavailable(error) from error
