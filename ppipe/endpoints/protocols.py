"""The two ways ppipe talks to a participant's model service.

``ppipe``: ``POST {url}`` with ``{"rows": [{"row_id": ..., <feature>: ...}]}``, answered by
``{"predictions": [{"row_id": ..., "prediction": ...}]}``.

``v2``: the Open Inference Protocol (KServe, Seldon MLServer, Triton). The registered URL
is the model's, ``https://host/v2/models/<model>[/versions/<v>]``; readiness is
``GET https://host/v2/health/ready`` and predictions ``POST <url>/infer`` with one input
tensor per feature column. OIP has no row ids: answers are matched to rows by position.

The label column is never sent, whichever protocol: every row goes through :func:`features`,
which drops it (the probe takes the label's name and calls it before encoding).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

ROW_ID = "row_id"
PROTOCOLS = ("ppipe", "v2")
_V2_MODEL_PATH = re.compile(r"^(?P<base>.*?)/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?/?$")
_SCALARS = (str, int, float, bool, type(None))


class ProtocolError(ValueError):
    """The URL does not fit the protocol (a registration error naming the rule)."""


class BadBody(ValueError):
    """The answer is not what the protocol says (outcome ``bad_body``); says what."""


@dataclass
class Answer:
    """The predictions an endpoint gave, keyed by the row ids that were asked for."""

    predictions: dict[Any, Any] = field(default_factory=dict)
    problem: str | None = None  # set when rows are missing, unknown or duplicated

    @property
    def rows_answered(self) -> int:
        return len(self.predictions)


def features(rows: Iterable[dict], label: str | None) -> list[dict]:
    """The rows as they may leave ppipe: the label column removed, row ids kept first."""
    out = []
    for row in rows:
        if ROW_ID not in row:
            raise ValueError(f"every row needs a {ROW_ID!r} to be sent to an endpoint")
        out.append({ROW_ID: row[ROW_ID], **{k: _json_value(v) for k, v in row.items() if k not in (ROW_ID, label)}})
    return out


def _json_value(value: Any) -> Any:
    """NaN is not JSON: a missing number travels as null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def get(name: str) -> "Protocol":
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ProtocolError(f"protocol: must be one of {', '.join(PROTOCOLS)}, not {name!r}") from None


class Protocol:
    name: str

    def check_url(self, url: str) -> None:
        """ProtocolError if the URL cannot be this protocol's."""

    def ready_url(self, url: str) -> str | None:
        """A URL answering 200 when the service is ready (None: the protocol has none)."""
        return None

    def predict_url(self, url: str) -> str:
        return url

    def encode(self, rows: Sequence[dict], request_id: str) -> bytes:
        raise NotImplementedError

    def decode(self, body: bytes, row_ids: Sequence[Any]) -> Answer:
        raise NotImplementedError


class PpipeProtocol(Protocol):
    name = "ppipe"

    def encode(self, rows: Sequence[dict], request_id: str) -> bytes:
        return _dumps({"rows": list(rows)})

    def decode(self, body: bytes, row_ids: Sequence[Any]) -> Answer:
        document = _loads(body)
        items = document.get("predictions") if isinstance(document, dict) else None
        if not isinstance(items, list):
            raise BadBody('expected an object with a "predictions" list')
        pairs = []
        for position, item in enumerate(items):
            if not isinstance(item, dict) or ROW_ID not in item or "prediction" not in item:
                raise BadBody(f'predictions[{position}]: expected {{"row_id": ..., "prediction": ...}}')
            if not isinstance(item["prediction"], _SCALARS) or not isinstance(item[ROW_ID], (str, int)):
                raise BadBody(f"predictions[{position}]: row_id and prediction must be plain values")
            pairs.append((item[ROW_ID], item["prediction"]))
        return match_rows(pairs, row_ids)


class V2Protocol(Protocol):
    """Open Inference Protocol v2 (REST)."""

    name = "v2"

    def check_url(self, url: str) -> None:
        if not _V2_MODEL_PATH.match(_path_of(url)):
            raise ProtocolError("url: a v2 endpoint is the model's URL, ending in /v2/models/<model>")

    def ready_url(self, url: str) -> str:
        scheme_host, path = _split(url)
        return scheme_host + _V2_MODEL_PATH.match(path)["base"] + "/v2/health/ready"

    def predict_url(self, url: str) -> str:
        return url.rstrip("/") + "/infer"

    def encode(self, rows: Sequence[dict], request_id: str) -> bytes:
        columns = [c for c in (rows[0] if rows else {}) if c != ROW_ID]
        inputs = []
        for column in columns:
            values = [row.get(column) for row in rows]
            datatype, data = _tensor(values)
            inputs.append({"name": column, "shape": [len(rows)], "datatype": datatype, "data": data})
        return _dumps({"id": request_id, "inputs": inputs})

    def decode(self, body: bytes, row_ids: Sequence[Any]) -> Answer:
        document = _loads(body)
        outputs = document.get("outputs") if isinstance(document, dict) else None
        if not isinstance(outputs, list) or not outputs or not all(isinstance(o, dict) for o in outputs):
            raise BadBody('expected an object with a non-empty "outputs" list')
        output = _pick_output(outputs)
        data = output.get("data")
        if not isinstance(data, list):
            raise BadBody(f"outputs[{output.get('name')!r}]: no data list")
        flat = _flatten(data)
        if len(flat) != len(row_ids):
            answer = Answer(dict(zip(row_ids, flat)))
            answer.problem = f"{len(flat)} predictions for {len(row_ids)} rows"
            return answer
        return Answer(dict(zip(row_ids, flat)))


_BY_NAME: dict[str, Protocol] = {p.name: p for p in (PpipeProtocol(), V2Protocol())}


def match_rows(pairs: Iterable[tuple[Any, Any]], row_ids: Sequence[Any]) -> Answer:
    """Predictions keyed by the asked row ids; missing, unknown or repeated ids make a problem."""
    asked = set(row_ids)
    answer = Answer()
    unknown = repeated = 0
    for row_id, prediction in pairs:
        if row_id not in asked:
            unknown += 1
        elif row_id in answer.predictions:
            repeated += 1
        else:
            answer.predictions[row_id] = prediction
    missing = len(asked) - len(answer.predictions)
    parts = [f"{n} {what}" for n, what in ((missing, "missing"), (unknown, "unknown"), (repeated, "repeated")) if n]
    answer.problem = ", ".join(parts) + " row ids" if parts else None
    return answer


def _pick_output(outputs: list[dict]) -> dict:
    if len(outputs) == 1:
        return outputs[0]
    for name in ("prediction", "predictions", "output", "output-0", "output_0"):
        for output in outputs:
            if output.get("name") == name:
                return output
    raise BadBody("several outputs and none named prediction")


def _flatten(data: list) -> list:
    flat = []
    for item in data:
        if isinstance(item, list):  # shape [n, 1], row-major
            if len(item) != 1:
                raise BadBody("outputs: expected one prediction per row")
            item = item[0]
        if not isinstance(item, _SCALARS):
            raise BadBody("outputs: predictions must be plain values")
        flat.append(item)
    return flat


def _tensor(values: list) -> tuple[str, list]:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL", values
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64", values
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "FP64", [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
    return "BYTES", [None if v is None else str(v) for v in values]


def _dumps(document: Any) -> bytes:
    # allow_nan=False: NaN is not JSON; rows reach here with NaN already turned into null.
    return json.dumps(document, separators=(",", ":"), allow_nan=False, default=str).encode()


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadBody(f"not JSON ({exc.__class__.__name__} at byte {getattr(exc, 'pos', 0)})") from None


def _split(url: str) -> tuple[str, str]:
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host}", slash + path.split("?", 1)[0]


def _path_of(url: str) -> str:
    return _split(url)[1]
