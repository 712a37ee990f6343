"""Content-addressed blob stores: the bytes of Binaries, keyed by their SHA-256, on the local
filesystem or in S3. Uploads are staged to a local temporary file while hashing (memory stays
flat), then committed under their hash unless the store holds them already."""

from __future__ import annotations

from pathlib import Path

from storage.blobs.base import (
    BlobEmpty,
    BlobInfo,
    BlobMissing,
    BlobStore,
    BlobTooLarge,
    StagedBlob,
    stage_to_file,
)
from storage.blobs.filesystem import FileBlobStore
from storage.blobs.s3 import S3BlobStore

__all__ = ["BlobEmpty", "BlobInfo", "BlobMissing", "BlobStore", "BlobTooLarge", "FileBlobStore",
           "S3BlobStore", "StagedBlob", "blob_store_from_url", "stage_to_file"]


def blob_store_from_url(url: str | None, *, data_dir: Path) -> BlobStore:
    """``None`` -> files under ``data_dir/blobs``; ``file:///path``; ``s3://bucket/prefix``."""
    if not url:
        return FileBlobStore(data_dir / "blobs")
    if url.startswith("file://"):
        return FileBlobStore(Path(url.removeprefix("file://")))
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"FHIR_BLOB_URL '{url}' names no bucket (s3://bucket/prefix)")
        return S3BlobStore(bucket, prefix, staging_dir=data_dir / "staging")
    raise ValueError(f"FHIR_BLOB_URL '{url}' is neither file:///path nor s3://bucket/prefix")
