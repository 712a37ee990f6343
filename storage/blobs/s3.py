"""Blobs as S3 objects ``<prefix>/<sha256>`` through boto3, encrypted at rest (SSE AES256).
boto3 reads its own settings: AWS_ENDPOINT_URL_S3 (S3-compatible servers), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION. boto3 is synchronous: calls run in threads.

On real S3 the credentials need s3:ListBucket besides Get/Put/DeleteObject: without it S3
answers HEAD of an absent key with 403 instead of 404, and every commit fails."""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage.blobs.base import BlobMissing, BlobStoreUnavailable, StagedBlob, stage_to_file

TRANSFER = TransferConfig(multipart_threshold=8 * 1024 * 1024,
                          multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
"""Objects from the multipart threshold up go in 8 MiB parts, four at a time; smaller ones in
one ``put_object``: boto3's managed transfer would send the same single PUT, but builds and
shuts down a thread pool around it (2-4 ms of a 1 MiB upload here)."""
EXTRA_ARGS = {"ServerSideEncryption": "AES256", "ContentType": "application/octet-stream"}
POOL_CONNECTIONS = 32
"""HTTP connections the client keeps to S3 (botocore's default is 10): concurrent requests
each use one, and a multipart upload ``TRANSFER.max_concurrency`` of them."""


_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNSAFE_IN_QUOTES = re.compile(r'[^\x20-\x7e]|["\\]')


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _missing(error: ClientError) -> bool:
    return _error_code(error) in ("404", "NoSuchKey", "NotFound")


def _unavailable(error: ClientError | BotoCoreError) -> BlobStoreUnavailable:
    """S3 refused (an absent bucket, denied credentials, a server error) or could not be
    reached: what the request's answer says (the code, never the key or the URL)."""
    if isinstance(error, ClientError):
        return BlobStoreUnavailable(f"S3 answered {_error_code(error) or 'an error'}")
    return BlobStoreUnavailable(f"S3 could not be reached ({type(error).__name__})")


def content_disposition(filename: str) -> str:
    """``attachment`` with the name as an ASCII fallback and RFC 5987 UTF-8 (RFC 6266 4.3):
    quotes, backslashes and control characters never reach the header."""
    fallback = _UNSAFE_IN_QUOTES.sub("_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class S3BlobStore:
    kind = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, staging_dir: Path | None = None,
                 client: Any = None, endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.staging = staging_dir or Path(tempfile.gettempdir()) / "fhir-blob-staging"
        self._owns_client = client is None
        self.client = client or boto3.client(
            "s3", endpoint_url=endpoint_url,
            config=Config(signature_version="s3v4", max_pool_connections=POOL_CONNECTIONS))

    def key_of(self, sha256: str) -> str:
        return f"{self.prefix}/{sha256}" if self.prefix else sha256

    async def stage(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StagedBlob:
        # a scratch copy: the object is only used once S3 has answered the PUT
        return await stage_to_file(chunks, self.staging, max_bytes=max_bytes, durable=False)

    async def preplace(self, staged: StagedBlob, *,
                       unless: Callable[[], Awaitable[bool]]) -> bool:
        """PUT staged bytes from the multipart threshold up before their transaction (a
        smaller PUT is quicker than the HEAD ``commit`` would then need)."""
        if staged.info.size < TRANSFER.multipart_threshold or not staged.path.exists() \
                or await unless():
            return False
        await asyncio.to_thread(self._put, staged.path, self.key_of(staged.info.sha256),
                                staged.info.size)
        staged.preplaced = True
        return True

    async def commit(self, staged: StagedBlob, *, new: bool = False) -> bool:
        """PUT the staged file under its hash; first a HEAD, unless ``new`` and not sent
        ahead (``preplace``), so bytes held already are not sent again."""
        try:
            if not staged.path.exists():
                return False
            if (staged.preplaced or not new) and await self.exists(staged.info.sha256):
                return False
            await asyncio.to_thread(self._put, staged.path, self.key_of(staged.info.sha256),
                                    staged.info.size)
            return True
        finally:
            staged.path.unlink(missing_ok=True)

    def _put(self, path: Path, key: str, size: int) -> None:
        """One PUT below the multipart threshold, a managed multipart upload from it (either
        way the object appears whole or not at all)."""
        try:
            if size < TRANSFER.multipart_threshold:
                with path.open("rb") as body:
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                           **EXTRA_ARGS)
            else:
                self.client.upload_file(str(path), self.bucket, key, ExtraArgs=EXTRA_ARGS,
                                        Config=TRANSFER)
        except S3UploadFailedError as exc:  # the managed upload's wrapping of a ClientError
            cause = exc.__context__
            raise (_unavailable(cause) if isinstance(cause, ClientError)
                   else BlobStoreUnavailable("S3 did not take the upload")) from exc
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc

    async def discard(self, staged: StagedBlob) -> None:
        staged.path.unlink(missing_ok=True)

    async def exists(self, sha256: str) -> bool:
        if not _SHA256.fullmatch(sha256):
            return False
        try:
            await self.size(sha256)
        except BlobMissing:
            return False
        return True

    async def delete(self, sha256: str) -> None:
        if not _SHA256.fullmatch(sha256):
            return
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket,
                                Key=self.key_of(sha256))

    async def size(self, sha256: str) -> int:
        if not _SHA256.fullmatch(sha256):
            raise BlobMissing(sha256)
        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket,
                                           Key=self.key_of(sha256))
        except ClientError as exc:
            if _missing(exc):
                raise BlobMissing(sha256) from None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return int(head["ContentLength"])

    async def open(self, sha256: str, *, start: int = 0, end: int | None = None,
                   chunk_size: int = 256 * 1024) -> AsyncGenerator[bytes, None]:
        if not _SHA256.fullmatch(sha256):
            raise BlobMissing(sha256)
        wanted: dict[str, str] = {}
        if start or end is not None:
            wanted["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket,
                                               Key=self.key_of(sha256), **wanted)
        except ClientError as exc:
            if _missing(exc):
                raise BlobMissing(sha256) from None
            if _error_code(exc) == "InvalidRange":
                return  # starts past the end: no bytes, as from a file
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
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
        """A presigned GET (SigV4) that answers with the given type and, with a filename, as
        an attachment; BlobMissing when the object is absent."""
        if not await self.exists(sha256):
            raise BlobMissing(sha256)
        params = {"Bucket": self.bucket, "Key": self.key_of(sha256),
                  "ResponseContentType": content_type}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        url: str = await asyncio.to_thread(self.client.generate_presigned_url, "get_object",
                                           Params=params, ExpiresIn=expires_seconds)
        return url

    async def close(self) -> None:
        if self._owns_client:
            await asyncio.to_thread(self.client.close)
