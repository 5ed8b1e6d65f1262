"""Participants' model services, good and bad, as real uvicorn servers on loopback.

Run as a process: ``python -m tests.endpoints.services --secret S [--cert C --key K] [--many N]``.
It binds every service to a free port on 127.0.0.1, prints one JSON line
``{"name": port, ...}`` once all are listening, and serves until killed.

Each service is a plain ASGI app (no framework: what is under test is ppipe's client side).
``correct`` also checks the signature with the secret it was given and remembers what it
was sent, so a test can ask ``GET /last`` whether the label column ever arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys

import uvicorn

from ppipe.endpoints import signing
from ppipe.participants.model_service import read_body


async def send_json(send, document, status: int = 200, headers: list | None = None) -> None:
    body = json.dumps(document).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def predict(row: dict):
    """The 'model': a deterministic function of the features."""
    return int(float(row.get("x") or 0) > 0.5)


class Correct:
    """Answers every ppipe-protocol call right; remembers the last request it saw."""

    def __init__(self, secret: str):
        self.secret, self.last = secret, {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/last":
            return await send_json(send, self.last)
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        rows = json.loads(body)["rows"]
        self.last = {
            "columns": sorted({c for row in rows for c in row}),
            "signature_ok": signing.verify(self.secret, headers, body),
            "host": headers.get("host"),
        }
        await send_json(send, {"predictions": [{"row_id": r["row_id"], "prediction": predict(r)} for r in rows]})


async def slow(scope, receive, send):
    if scope["type"] == "http":
        await read_body(receive)
        await asyncio.sleep(3600)


class Flaky:
    """Fails every other call with a 500."""

    def __init__(self):
        self.calls = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        rows = json.loads(await read_body(receive))["rows"]
        self.calls += 1
        if self.calls % 2 == 0:
            return await send_json(send, {"detail": "boom"}, status=500)
        await send_json(send, {"predictions": [{"row_id": r["row_id"], "prediction": 1} for r in rows]})


async def wrong_schema(scope, receive, send):
    if scope["type"] == "http":
        rows = json.loads(await read_body(receive))["rows"]
        await send_json(send, {"preds": [1] * len(rows)})


async def wrong_rows(scope, receive, send):
    if scope["type"] == "http":
        rows = json.loads(await read_body(receive))["rows"]
        await send_json(send, {"predictions": [{"row_id": r["row_id"] + 1000, "prediction": 1} for r in rows]})


async def huge(scope, receive, send):
    """10 MiB of JSON-looking bytes, streamed without a Content-Length."""
    if scope["type"] != "http":
        return
    await read_body(receive)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    chunk = b" " * 65536
    for _ in range(160):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"{}"})


async def redirect(scope, receive, send):
    if scope["type"] == "http":
        await read_body(receive)
        await send({"type": "http.response.start", "status": 307,
                    "headers": [(b"location", b"http://169.254.169.254/latest/meta-data/iam/security-credentials/")]})
        await send({"type": "http.response.body", "body": b""})


async def drop(scope, receive, send):
    """Promises 1000 bytes, sends 10, then gives up: uvicorn closes the connection."""
    if scope["type"] != "http":
        return
    await read_body(receive)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
    await send({"type": "http.response.body", "body": b'{"predicti', "more_body": True})
    raise RuntimeError("service crashed mid-answer")


class V2Model:
    """An Open Inference Protocol server with one model, ``m``."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if scope["method"] == "GET" and scope["path"] == "/v2/health/ready":
            return await send_json(send, {"ready": True})
        if scope["method"] == "POST" and scope["path"] == "/v2/models/m/infer":
            request = json.loads(body)
            columns = {tensor["name"]: tensor["data"] for tensor in request["inputs"]}
            n = request["inputs"][0]["shape"][0]
            rows = [{name: data[i] for name, data in columns.items()} for i in range(n)]
            return await send_json(send, {
                "model_name": "m", "id": request.get("id"),
                "outputs": [{"name": "prediction", "shape": [n], "datatype": "INT64", "data": [predict(r) for r in rows]}],
            })
        await send_json(send, {"error": "not found"}, status=404)


def services(secret: str) -> dict:
    return {
        "correct": Correct(secret), "slow": slow, "flaky": Flaky(), "wrong_schema": wrong_schema,
        "wrong_rows": wrong_rows, "huge": huge, "redirect": redirect, "drop": drop, "v2": V2Model(),
    }


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


async def serve(apps: dict) -> None:
    servers, ports = [], {}
    for name, (app, options) in apps.items():
        sock = bound_socket()
        config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off",
                                timeout_keep_alive=1, timeout_graceful_shutdown=1, **options)
        server = uvicorn.Server(config)
        servers.append(asyncio.create_task(server.serve(sockets=[sock])))
        ports[name] = (server, sock.getsockname()[1])
    while not all(server.started for server, _ in ports.values()):
        await asyncio.sleep(0.01)
    print(json.dumps({name: port for name, (_, port) in ports.items()}), flush=True)
    await asyncio.gather(*servers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--many", type=int, default=0, help="also serve N copies of correct (benchmark)")
    parser.add_argument("--hanging", type=int, default=0, help="and N copies of slow (benchmark)")
    args = parser.parse_args()
    apps = {name: (app, {}) for name, app in services(args.secret).items()}
    if args.cert:
        apps["tls"] = (Correct(args.secret), {"ssl_certfile": args.cert, "ssl_keyfile": args.key})
    for i in range(args.many):
        apps[f"correct-{i}"] = (Correct(args.secret), {})
    for i in range(args.hanging):
        apps[f"slow-{i}"] = (slow, {})
    try:
        asyncio.run(serve(apps))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
