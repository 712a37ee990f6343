"""The transfers the media benchmark times: the same file bytes moved through the FHIR server
(``POST /fhir/Binary`` raw bytes, ``GET /fhir/Binary/{id}``) and without it (a plain file
write/read in the blob store's filesystem, plain boto3 calls against the same S3 server, or
the minimal HTTP file app ``benchmarks/media_floor_app.py`` on the same filesystem).

Every upload is unique (a random token after the PDF signature), so the server never
deduplicates; the rest of the bytes come from one random block shared by all uploads. The
HTTP and S3 targets get each upload as one ``bytes`` built before the clock starts; only the
transfer itself is timed, not its preparation."""

from __future__ import annotations

import io
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3

from storage.blobs.s3 import EXTRA_ARGS, TRANSFER

MIB = 1024 * 1024
CHUNK = MIB  # what the client writes per send, and the plain reference per write/read
PDF_SIGNATURE = b"%PDF-1.7\n"
MEDIA_TYPE = "application/pdf"


@dataclass(frozen=True)
class Payload:
    """One upload's bytes: a unique PDF-signed prefix, then a slice of the shared block."""

    prefix: bytes
    body: memoryview

    @property
    def size(self) -> int:
        return len(self.prefix) + len(self.body)

    def chunks(self) -> Iterator[bytes | memoryview]:
        yield self.prefix
        for start in range(0, len(self.body), CHUNK):
            yield self.body[start:start + CHUNK]

    def to_bytes(self) -> bytes:
        return self.prefix + self.body.tobytes()


class Payloads:
    """Unique payloads of any size up to ``largest`` bytes from one random block."""

    def __init__(self, largest: int) -> None:
        self._block = memoryview(os.urandom(largest))

    def make(self, size: int) -> Payload:
        prefix = PDF_SIGNATURE + f"%bench {uuid.uuid4().hex}\n".encode()
        if not len(prefix) < size <= len(self._block):
            raise ValueError(f"payload size {size} outside ({len(prefix)}, {len(self._block)}]")
        return Payload(prefix, self._block[:size - len(prefix)])


class Target(Protocol):
    """Where bytes go and come back from. ``prepare`` (not timed) turns a payload into what
    ``upload`` sends; ``upload`` returns the handle ``download`` and ``remove`` take."""

    def prepare(self, payload: Payload) -> Any: ...

    def upload(self, prepared: Any) -> str: ...

    def download(self, handle: str) -> int: ...

    def remove(self, handle: str) -> None: ...


class HttpTarget:
    """An HTTP file service over one keep-alive connection of urllib3, the HTTP library boto3
    itself uses, so the server and the plain S3 reference have the same client: the body is
    sent as one prepared ``bytes`` (as ``put_object`` sends it) and read back in 1 MiB reads
    (as the plain reference reads ``get_object``)."""

    upload_path = ""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.pool = urllib3.HTTPConnectionPool(parts.hostname or "127.0.0.1", parts.port,
                                               maxsize=1, block=True, retries=False,
                                               timeout=300.0)

    def prepare(self, payload: Payload) -> bytes:
        return payload.to_bytes()  # built before the clock, as for the plain reference

    def upload(self, data: bytes) -> str:
        response = self.pool.urlopen("POST", self.upload_path, body=data,
                                     headers={"Content-Type": MEDIA_TYPE})
        if response.status != 201:
            raise RuntimeError(f"POST {self.upload_path} ({len(data)} bytes) got HTTP "
                               f"{response.status}: {response.data[:500]!r}")
        return self.created(response)

    def created(self, response: urllib3.BaseHTTPResponse) -> str:
        raise NotImplementedError

    def path_of(self, handle: str) -> str:
        raise NotImplementedError

    def download(self, handle: str) -> int:
        response = self.pool.urlopen("GET", self.path_of(handle), preload_content=False)
        try:
            if response.status != 200:
                raise RuntimeError(f"GET {self.path_of(handle)} got HTTP {response.status}: "
                                   f"{response.read()[:500]!r}")
            received = 0
            while chunk := response.read(CHUNK):
                received += len(chunk)
            return received
        finally:
            response.release_conn()

    def read_all(self, handle: str) -> bytes:
        response = self.pool.urlopen("GET", self.path_of(handle))
        if response.status != 200:
            raise RuntimeError(f"GET {self.path_of(handle)} got HTTP {response.status}")
        return bytes(response.data)

    def remove(self, handle: str) -> None:
        response = self.pool.urlopen("DELETE", self.path_of(handle))
        if response.status not in (200, 204):
            raise RuntimeError(f"DELETE {self.path_of(handle)} got HTTP {response.status}")

    def close(self) -> None:
        self.pool.close()


class ServerTarget(HttpTarget):
    """The FHIR server: raw-byte ``POST /fhir/Binary`` and ``GET /fhir/Binary/{id}``."""

    upload_path = "/fhir/Binary"

    def created(self, response: urllib3.BaseHTTPResponse) -> str:
        return _binary_id(response)

    def path_of(self, handle: str) -> str:
        return f"/fhir/Binary/{handle}"


class FloorTarget(HttpTarget):
    """``benchmarks/media_floor_app.py``: the same bytes as a plain file copy behind HTTP."""

    upload_path = "/files"

    def created(self, response: urllib3.BaseHTTPResponse) -> str:
        return response.data.decode()

    def path_of(self, handle: str) -> str:
        return f"/files/{handle}"


def _binary_id(response: urllib3.BaseHTTPResponse) -> str:
    """The new Binary id from the JSON body, else from the Location header."""
    try:
        body = json.loads(response.data)
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            return str(body["id"])
    except ValueError:
        pass
    match = re.search(r"/Binary/([^/?#]+)", response.headers.get("location", ""))
    if match is None:
        raise RuntimeError("Binary create answered neither a body id nor a Location header")
    return match.group(1)


class PlainFileTarget:
    """Plain file write and read in a folder on the blob store's filesystem. Like the server's
    file store (storage/blobs/filesystem.py: staged write, rename, no fsync) it does not
    fsync, so both measure the page cache."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._buffer = bytearray(CHUNK)
        directory.mkdir(parents=True, exist_ok=True)

    def prepare(self, payload: Payload) -> Payload:
        return payload

    def upload(self, payload: Payload) -> str:
        path = self.directory / uuid.uuid4().hex
        with path.open("wb", buffering=0) as file:
            for chunk in payload.chunks():
                file.write(chunk)
        return str(path)

    def download(self, handle: str) -> int:
        # One reused buffer: a fresh 1 MiB bytes object per read is a new mmap (glibc) and
        # costs page faults, which made this reference swing between 2 and 20 GiB/s.
        received = 0
        with open(handle, "rb", buffering=0) as file:
            while count := file.readinto(self._buffer):
                received += count
        return received

    def remove(self, handle: str) -> None:
        Path(handle).unlink(missing_ok=True)


class PlainS3Target:
    """Plain boto3 against the same S3 server, sending the requests the server's store sends:
    below the multipart threshold one ``put_object``, from it ``upload_fileobj`` with the
    store's TransferConfig (8 MiB parts), both with SSE AES256; ``get_object`` read to the
    end."""

    def __init__(self, client: Any, bucket: str, prefix: str = "plain") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def prepare(self, payload: Payload) -> bytes:
        return payload.to_bytes()  # boto3 wants a file-like object: built before the clock

    def upload(self, data: bytes) -> str:
        key = f"{self.prefix}/{uuid.uuid4().hex}"
        if len(data) < TRANSFER.multipart_threshold:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **EXTRA_ARGS)
        else:
            self.client.upload_fileobj(io.BytesIO(data), self.bucket, key,
                                       ExtraArgs=EXTRA_ARGS, Config=TRANSFER)
        return key

    def download(self, handle: str) -> int:
        body = self.client.get_object(Bucket=self.bucket, Key=handle)["Body"]
        received = 0
        try:
            while chunk := body.read(CHUNK):
                received += len(chunk)
        finally:
            body.close()
        return received

    def remove(self, handle: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=handle)


@dataclass
class Batch:
    """Bytes moved and seconds spent (transfers only) by one batch of one direction."""

    size: int
    files: int
    seconds: float = 0.0

    @property
    def mib_per_s(self) -> float:
        return self.size * self.files / MIB / self.seconds if self.seconds else 0.0


def upload_batch(target: Target, payloads: Payloads, *, size: int,
                 files: int) -> tuple[Batch, list[str]]:
    """Upload ``files`` unique payloads of ``size`` bytes one after another; the handles."""
    batch = Batch(size, files)
    handles: list[str] = []
    for _ in range(files):
        prepared = target.prepare(payloads.make(size))
        started = time.perf_counter()
        handles.append(target.upload(prepared))
        batch.seconds += time.perf_counter() - started
    return batch, handles


def download_batch(target: Target, handles: list[str], *, size: int) -> Batch:
    """Read each handle's bytes to the end, one after another; checks every length."""
    batch = Batch(size, len(handles))
    for handle in handles:
        started = time.perf_counter()
        received = target.download(handle)
        batch.seconds += time.perf_counter() - started
        if received != size:
            raise RuntimeError(f"download of {handle} gave {received} bytes, not {size}")
    return batch
