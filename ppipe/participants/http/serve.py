"""Serving the API (or another ASGI app) from a thread of this process (the demo runs it beside its worker)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn

from ppipe.ledger import Ledger
from ppipe.participants.http.app import create_app


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextmanager
def serving(ledger: Ledger | None = None, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """The participants' API on a real uvicorn server on ``host`` while the block runs; yields its base URL."""
    with serving_app(create_app(ledger), host, port) as url:
        yield url


@contextmanager
def serving_app(app, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Any ASGI ``app`` on a real uvicorn server in a thread while the block runs; yields its base URL."""
    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           access_log=False, timeout_keep_alive=75))
    thread = threading.Thread(target=server.run, name=f"ppipe-serve-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
