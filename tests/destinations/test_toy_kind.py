"""A destination kind defined here, in the test, works through plan, run and verify once registered.

The toy kind keeps each challenge's releases in a folder of "shelves" (plain files named by
their sha256 prefix, with an index): nothing in ppipe knows it, yet the challenge model
accepts ``kind: toy``, the plan names its locations, a dispatch run delivers to it and
``verify`` reads it back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import pytest

from ppipe import api, delivery
from ppipe.challenge.specfile import parse_challenge
from ppipe.destinations import Destination, GrantResult, ObjectInfo, register, unregister
from ppipe.destinations.spec import DestinationSpec
from ppipe.durable import file_sha256
from ppipe.errors import DestinationError, SpecError
from ppipe.ledger import Ledger
from tests.support.helpers import challenge_data, write_csv


class ToySpec(DestinationSpec):
    """A shelf folder; releases are stored under their content hash, found through index.json."""

    kind: Literal["toy"] = "toy"
    shelf: Path

    def location(self, challenge: str) -> str:
        return f"toy://{self.shelf.name}/{challenge}"


class ToyShelf(Destination):
    kind = "toy"

    @property
    def folder(self) -> Path:
        return self.spec.shelf / self.challenge

    def _index(self) -> dict:
        path = self.folder / "index.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def upload(self, local_file: Path, name: str) -> str:
        size, digest = file_sha256(local_file)
        shutil.copyfile(local_file, self.folder / digest[:16])
        (self.folder / "index.json").write_text(json.dumps({**self._index(), name: digest[:16]}))
        return self.uri_of(name)

    def stat(self, name: str) -> ObjectInfo | None:
        key = self._index().get(name)
        if key is None:
            return None
        size, digest = file_sha256(self.folder / key)
        return ObjectInfo(size, digest)

    def delete(self, name: str) -> None:
        (self.folder / self._index().pop(name, "missing")).unlink(missing_ok=True)

    def grant(self, identity: str, role: str = "reader", *, via=None, notify: bool = False) -> GrantResult:
        raise DestinationError(self.uri, "toy shelves have no access control")

    def revoke(self, identity: str, *, via=None) -> None:
        raise DestinationError(self.uri, "toy shelves have no access control")


@pytest.fixture
def toy_kind():
    register(ToySpec, ToyShelf)
    yield
    unregister("toy")


def test_an_unregistered_kind_is_refused(tmp_path):
    with pytest.raises(SpecError, match="unknown destination kind 'toy'"):
        parse_challenge(challenge_data(tmp_path, destinations=[{"kind": "toy", "shelf": str(tmp_path)}]))


def test_a_toy_kind_goes_through_plan_run_and_verify(tmp_path, toy_kind):
    write_csv(tmp_path / "data.csv", 30)
    shelf = tmp_path / "shelf"
    challenge = parse_challenge(challenge_data(tmp_path, name="toy-demo", releases=3,
                                               destinations=[{"kind": "toy", "shelf": str(shelf)}]))
    n_rows, releases = api.plan(challenge)
    assert n_rows == 30 and [r.destinations for r in releases] == [("toy://shelf/toy-demo",)] * 3

    ledger = Ledger()
    api.create(challenge, ledger=ledger)
    report = delivery.dispatch(ledger, "toy-demo", now=challenge.schedule.time_of(2))
    assert report.ok and len(report.delivered) == 3, report
    assert set(json.loads((shelf / "toy-demo" / "index.json").read_text())) == {
        "release_0.csv", "release_1.csv", "release_2.csv", "manifest.json"}

    checked = api.verify("toy-demo", ledger=ledger)
    assert checked.ok and checked.checked == 3, checked.problems
    (shelf / "toy-demo" / json.loads((shelf / "toy-demo" / "index.json").read_text())["release_1.csv"]).write_text("x")
    assert any("release_1" in problem for problem in api.verify("toy-demo", ledger=ledger).problems)
