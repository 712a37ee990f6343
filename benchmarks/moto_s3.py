"""An S3-compatible server for the media benchmark: moto in server mode as its own process on a
free port, a bucket in it, and boto3 clients configured as the server's S3 blob store is."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from benchmarks.processes import Server, free_port, log_tail, start

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


def start_moto(work: Path) -> Server:
    """Start ``moto_server`` (next to this interpreter) on 127.0.0.1 and wait until it answers."""
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        raise RuntimeError(f"{exe} not found; install it: .venv/bin/pip install 'moto[server]'")
    port = free_port()
    argv = [str(exe), "-H", "127.0.0.1", "-p", str(port)]
    server = start("moto S3", argv, dict(os.environ), work, work / "moto.log", port)
    deadline = time.monotonic() + 30.0
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {server.process.returncode}:\n"
                               f"{log_tail(server.log_path)}")
        try:
            httpx.get(server.url, timeout=1.0)
            return server
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("moto_server did not answer within 30 s") from None
            time.sleep(0.1)


def environment(endpoint: str) -> dict[str, str]:
    """boto3's own settings, as the FHIR server reads them for ``FHIR_BLOB_URL=s3://...``."""
    return {"AWS_ENDPOINT_URL_S3": endpoint, **CREDENTIALS}


def client(endpoint: str) -> Any:
    """A boto3 S3 client on the settings of the server's store (SigV4, same endpoint)."""
    return boto3.client("s3", endpoint_url=endpoint, region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
                        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                        config=Config(signature_version="s3v4"))


def create_bucket(endpoint: str, name: str) -> None:
    client(endpoint).create_bucket(Bucket=name)
