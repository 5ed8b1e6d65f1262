"""Real storage servers on loopback, started once per test session.

- moto's S3 (and IAM) server in-process (ThreadedMotoServer), reached over HTTP;
- gcp-storage-emulator, reached over HTTP by gcsfs / google-cloud-storage.

Tests talk to them through the same clients (s3fs, boto3, gcsfs) real S3 and GCS use.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """Endpoint URL of a moto S3/IAM server on loopback (auth off: any key is accepted)."""
    from moto.server import ThreadedMotoServer

    os.environ.pop("AWS_CA_BUNDLE", None)  # this machine sets one; loopback HTTP needs none
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket on the moto server; yields its name."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="eu-west-1")
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


@pytest.fixture(scope="session")
def gcs_server():
    """Endpoint URL of a gcp-storage-emulator on loopback (in memory)."""
    from gcp_storage_emulator.server import create_server

    # Without this gcsfs tries gRPC against the emulator and times out.
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    yield endpoint
    server.stop()


@pytest.fixture
def gcs_bucket(gcs_server):
    """A fresh bucket on the GCS emulator; yields its name."""
    import gcsfs

    name = f"test-{uuid.uuid4().hex[:12]}"
    fs = gcsfs.GCSFileSystem(endpoint_url=gcs_server, token="anon", project="test")
    fs.mkdir(name)
    return name


def use_aws_key(monkeypatch, key: dict) -> None:
    """Make an IAM access key (``create_access_key()["AccessKey"]``) the environment's credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def post(url: str, body: bytes = b"") -> None:
    """POST ``body`` as text (moto's admin API: ``/moto-api/reset-auth`` takes a number)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=5).read()


@contextmanager
def moto_process(**environment: str) -> Iterator[str]:
    """A moto server in a process of its own; yields its endpoint URL.

    moto's authentication switch and its state are global to a process, so tests that turn
    auth on run their own server rather than the shared in-process one.
    """
    port = free_port()
    env = {**os.environ, **environment}
    env.pop("AWS_CA_BUNDLE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto server did not start")
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)
