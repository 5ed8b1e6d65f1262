"""The demo's hosted participant's own prediction service: a real uvicorn server on loopback that
speaks ppipe's endpoint protocol, as a participant's deployed model would.

``POST /predict`` with ``{"rows": [{"row_id": ..., <feature>: ...}]}`` answers
``{"predictions": [{"row_id": ..., "prediction": ...}]}``, predicting as the careful
participant does (:func:`ppipe.participants.simulated.shaking`; 0 where a row has no
vibration). A plain ASGI app: a participant's service owes nothing to ppipe's own API code.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

import polars as pl

from ppipe.participants.http.serve import serving_app
from ppipe.participants.simulated import shaking

PATH = "/predict"


def predictions(rows: list[dict]) -> list[dict]:
    """One prediction per row, by row id."""
    if not rows:
        return []
    frame = pl.DataFrame(rows, infer_schema_length=None)
    guess = shaking() if "vibration" in frame.columns else pl.lit(0)
    answered = frame.select("row_id", guess.fill_null(0).alias("prediction"))
    return answered.to_dicts()


async def model_service(scope, receive, send) -> None:
    """The ASGI app: POST /predict answers, anything else is a 404."""
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    if scope["method"] != "POST" or scope["path"] != PATH:
        return await _json(send, {"detail": "not found"}, 404)
    try:
        rows = json.loads(body)["rows"]
        answer = {"predictions": predictions(rows)}
    except (ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as exc:
        return await _json(send, {"detail": f"bad request: {exc}"}, 400)
    await _json(send, answer)


@contextmanager
def hosting(host: str = "127.0.0.1") -> Iterator[str]:
    """The service on a free port of ``host`` while the block runs; yields its prediction URL."""
    with serving_app(model_service, host) as base:
        yield base + PATH


async def read_body(receive) -> bytes:
    """The whole request body of an ASGI call."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _json(send, document: dict, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(document).encode()})
