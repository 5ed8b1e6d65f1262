"""Simulated participants for the demo: real HTTP clients of the participants' API that read their
releases from a local folder, as a participant's pipeline would.

- ``careful``: answers every request, sending back exactly the rows it ingested, and predicts
  anomalies from the vibration column (readings far above the usual level; elsewhere the most
  common label);
- ``sloppy``: ingests numbers rounded to whole units, answers every other request, and always
  predicts the majority class;
- a participant with an ``endpoint`` (the demo's ``hosted``, careful otherwise) also registers its
  own prediction service (:mod:`ppipe.participants.model_service`) with ``PUT /v1/endpoint`` at
  its first poll, so ppipe calls it for health checks and prediction rounds.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import polars as pl

CSV = "text/csv"


@dataclass
class SimulatedParticipant:
    name: str
    token: str
    folder: Path  # where the challenge's releases arrive (a local destination's folder)
    style: str  # careful | sloppy
    endpoint: str | None = None  # URL of its own prediction service, registered at the first poll
    registered: dict | None = None  # ppipe's answer to the registration (its probe; the signing secret)
    answered: int = 0
    seen: set[str] = field(default_factory=set)
    cursor: int = 0

    def step(self, http: httpx.Client) -> None:
        """Register the endpoint (once), read the feed from the cursor, then answer the open requests not seen yet."""
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.endpoint and self.registered is None:
            answer = http.put("/v1/endpoint", json={"url": self.endpoint, "protocol": "ppipe"}, headers=headers)
            answer.raise_for_status()  # not registered: the next poll tries again
            self.registered = answer.json()
        page = http.get("/v1/feed", params={"after": self.cursor}, headers=headers).json()
        self.cursor = page["next_after"]
        for request in http.get("/v1/requests", headers=headers).json():
            if request["id"] in self.seen:
                continue
            self.seen.add(request["id"])
            if self.style == "sloppy" and len(self.seen) % 2 == 0:
                continue  # a sloppy pipeline misses every other request
            body = self._answer(request)
            if body is not None:
                http.put(f"/v1/requests/{request['id']}/answer", content=body, headers={**headers, "Content-Type": CSV})
                self.answered += 1

    def _answer(self, request: dict) -> bytes | None:
        if request["kind"] == "validation":
            rows = self._ingested().filter(pl.col("row_id").is_in(request["row_ids"]))
            return rows.write_csv().encode()
        features = self._read(Path(next(iter(request["features"].values()))).name)
        if features is None:
            return None
        if self.style == "careful" and "vibration" in features.columns:
            guess = shaking()
        elif self.style == "careful":
            guess = pl.lit(self._ingested()["label"].mode().sort()[0])  # elsewhere: the most common label
        else:
            guess = pl.lit(0)
        return features.select("row_id", guess.alias("prediction")).write_csv().encode()

    def _ingested(self) -> pl.DataFrame:
        """Every release received so far, as this participant's pipeline stored it."""
        frames = [self._read(path.name) for path in sorted(self.folder.glob("release_*"))]
        frame = pl.concat([f for f in frames if f is not None], how="diagonal_relaxed")
        if self.style == "sloppy":
            frame = frame.with_columns(pl.col(pl.Float64).round(0))
        return frame

    def _read(self, name: str) -> pl.DataFrame | None:
        path = self.folder / name
        if not path.is_file():
            return None
        data = path.read_bytes()
        return pl.read_parquet(io.BytesIO(data)) if name.endswith(".parquet") else pl.read_csv(io.BytesIO(data))


def shaking() -> pl.Expr:
    """The careful model: anomalies shake (the example's label is vibration above 0.5)."""
    return (pl.col("vibration") > 0.5).cast(pl.Int64)


def run_in_background(base_url: str, participants: list[SimulatedParticipant], every: float = 1.0) -> threading.Event:
    """Poll and answer every ``every`` seconds in a daemon thread until the returned event is set."""
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            while not stop.wait(every):
                for participant in participants:
                    try:
                        participant.step(http)
                    except (httpx.HTTPError, OSError, pl.exceptions.PolarsError, ValueError):
                        continue  # a participant's hiccup: it tries again at the next poll

    threading.Thread(target=loop, name="ppipe-demo-participants", daemon=True).start()
    return stop
