"""Content-addressed blob stores: the bytes of Binaries, keyed by their SHA-256, on the local
filesystem or in S3. Uploads are staged to a local temporary file while hashing (memory stays
flat), then committed under their hash unless the store holds them already."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from storage.blobs.base import (
    BlobEmpty,
    BlobInfo,
    BlobMissing,
    BlobStore,
    BlobStoreUnavailable,
    BlobTooLarge,
    StagedBlob,
    stage_to_file,
)
from storage.blobs.filesystem import FileBlobStore
from storage.blobs.s3 import S3BlobStore

__all__ = ["BlobEmpty", "BlobInfo", "BlobMissing", "BlobStore", "BlobStoreUnavailable",
           "BlobTooLarge", "FileBlobStore", "S3BlobStore", "StagedBlob", "blob_store_from_url",
           "stage_to_file"]


def blob_store_from_url(url: str | None, *, data_dir: Path) -> BlobStore:
    """The store FHIR_BLOB_URL names: ``None`` -> files under ``data_dir/blobs``;
    ``file:///absolute/path``; ``s3://bucket/prefix``. ValueError for anything else."""
    if not url:
        return FileBlobStore(data_dir / "blobs")
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        if parts.netloc not in ("", "localhost") or not path.is_absolute():
            raise ValueError(f"FHIR_BLOB_URL '{url}' is not file:///absolute/path")
        return FileBlobStore(path)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"FHIR_BLOB_URL '{url}' names no bucket (s3://bucket/prefix)")
        return S3BlobStore(parts.netloc, parts.path, staging_dir=data_dir / "staging")
    raise ValueError(f"FHIR_BLOB_URL '{url}' is neither file:///path nor s3://bucket/prefix")
