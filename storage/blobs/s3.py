"""Blobs as S3 objects ``<prefix>/<sha256>`` through boto3, encrypted at rest (SSE AES256).
boto3 reads its own settings: AWS_ENDPOINT_URL_S3 (S3-compatible servers), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION. boto3 is synchronous: calls run in threads."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from storage.blobs.base import BlobMissing, StagedBlob, stage_to_file

TRANSFER = TransferConfig(multipart_threshold=8 * 1024 * 1024,
                          multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)


def _missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3BlobStore:
    kind = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, staging_dir: Path | None = None,
                 client: Any = None, endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.staging = staging_dir or Path(tempfile.gettempdir()) / "fhir-blob-staging"
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url,
                                             config=Config(signature_version="s3v4"))

    def key_of(self, sha256: str) -> str:
        return f"{self.prefix}/{sha256}" if self.prefix else sha256

    async def stage(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StagedBlob:
        return await stage_to_file(chunks, self.staging, max_bytes=max_bytes)

    async def commit(self, staged: StagedBlob) -> bool:
        try:
            if not staged.path.exists() or await self.exists(staged.info.sha256):
                return False
            await asyncio.to_thread(
                self.client.upload_file, str(staged.path), self.bucket,
                self.key_of(staged.info.sha256),
                ExtraArgs={"ServerSideEncryption": "AES256",
                           "ContentType": "application/octet-stream"},
                Config=TRANSFER)
            return True
        finally:
            staged.path.unlink(missing_ok=True)

    async def discard(self, staged: StagedBlob) -> None:
        staged.path.unlink(missing_ok=True)

    async def exists(self, sha256: str) -> bool:
        try:
            await self.size(sha256)
        except BlobMissing:
            return False
        return True

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket,
                                Key=self.key_of(sha256))

    async def size(self, sha256: str) -> int:
        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket,
                                           Key=self.key_of(sha256))
        except ClientError as exc:
            if _missing(exc):
                raise BlobMissing(sha256) from None
            raise
        return int(head["ContentLength"])

    async def open(self, sha256: str, *, start: int = 0, end: int | None = None,
                   chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        byte_range = f"bytes={start}-{'' if end is None else end}"
        try:
            response = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket,
                                               Key=self.key_of(sha256), Range=byte_range)
        except ClientError as exc:
            if _missing(exc):
                raise BlobMissing(sha256) from None
            raise
        body = response["Body"]
        try:
            while True:
                chunk = await asyncio.to_thread(body.read, chunk_size)
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def presigned_url(self, sha256: str, *, expires_seconds: int, content_type: str,
                            filename: str | None) -> str | None:
        params = {"Bucket": self.bucket, "Key": self.key_of(sha256),
                  "ResponseContentType": content_type}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = await asyncio.to_thread(self.client.generate_presigned_url, "get_object",
                                           Params=params, ExpiresIn=expires_seconds)
        return url

    async def close(self) -> None:
        return None
