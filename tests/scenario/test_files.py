"""Releases that carry files: every referenced image ships under release_k/ beside its table, to
every destination kind on real servers (a local folder, moto S3, the GCS emulator, the Drive v2
test server), and ``ppipe verify`` checks each file."""

from __future__ import annotations

import json
import os
import stat
import uuid
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ppipe import api, settings
from ppipe.cli import app
from ppipe.delivery import dispatch
from ppipe.destinations import open_destination
from ppipe.errors import SpecError
from ppipe.ledger import Ledger
from ppipe.delivery.verify import verify
from tests.scenario.support import ROOT, challenge

LATER = datetime(2030, 1, 1, tzinfo=timezone.utc)
IMAGES = 12


def make_shapes(folder: Path, count: int | None = IMAGES) -> Path:
    """Run deployments/make_shapes.py into ``folder`` (``count`` images, None: the full example)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_shapes", ROOT / "deployments" / "make_shapes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make(folder) if count is None else module.make(folder, count=count)


@pytest.fixture
def shapes(tmp_path) -> Path:
    return make_shapes(tmp_path / "shapes")


def multimodal(tmp_path: Path, table: Path, destination: dict):
    events = [{"from": "release_1", "late_labels": {"label": "label"}},
              {"at": "release_2", "duplicates": {"rate": 0.5}}]
    return challenge(tmp_path, events=events, source=table, releases=3, name=f"shapes-{uuid.uuid4().hex[:6]}",
                     destinations=[destination], files={"column": "image", "root": str(table.parent)})


@pytest.fixture(params=["local", "s3", "gcs", "drive"])
def destination(request, tmp_path) -> dict:
    kind = request.param
    if kind == "local":
        return {"kind": "local", "path": str(tmp_path / "out")}
    bucket = f"ppipe-test-{uuid.uuid4().hex[:12]}"
    if kind == "s3":
        return {"kind": "s3", "bucket": bucket, "endpoint_url": request.getfixturevalue("s3_server"), "region": "eu-west-1"}
    if kind == "gcs":
        return {"kind": "gcs", "bucket": bucket, "endpoint_url": request.getfixturevalue("gcs_server"), "project": "test"}
    request.getfixturevalue("drive_routing")
    return {"kind": "drive", "parent": request.getfixturevalue("drive_parent"),
            "service_account_file": str(request.getfixturevalue("drive_key_file"))}


def test_every_file_is_delivered_and_verified(tmp_path, shapes, destination):
    made = multimodal(tmp_path, shapes, destination)
    api.create(made)
    run = dispatch(Ledger(), made.name, now=LATER)
    assert run is not None and run.ok, (run.failed, run.problems)
    report = verify(made.name)
    assert report.ok, report.problems
    assert report.checked == 3 + IMAGES + 1  # tables, one file per image, labels_1 (labels_2 never: no release_3)

    stored = open_destination(made.destinations[0], made.name)
    table = pl.read_csv(stored.read("release_1.csv"))
    source = pl.read_csv(shapes)
    for row_id, path in zip(table["row_id"], table["image"]):
        assert path == f"release_1/{source['image'][row_id]}"
        assert stored.read(path) == (shapes.parent / source["image"][row_id]).read_bytes()
    manifest = json.loads(stored.read("manifest.json"))
    listed = manifest["releases"][1]["files"]
    assert [f["path"] for f in listed] == sorted(table["image"].to_list())
    assert all(set(f) == {"path", "sha256", "bytes"} for f in listed)

    gone = listed[0]["path"]
    stored.delete(gone)
    problems = verify(made.name).problems
    assert len(problems) == 1 and gone in problems[0] and "missing" in problems[0]


def test_a_duplicated_row_ships_its_file_once(tmp_path, shapes):
    made = multimodal(tmp_path, shapes, {"kind": "local", "path": str(tmp_path / "out")})
    api.create(made)
    dispatch(Ledger(), made.name, now=LATER)
    out = tmp_path / "out" / made.name
    table = pl.read_csv(out / "release_2.csv")
    assert table.height > table["row_id"].n_unique()  # rate 0.5: some rows came twice
    shipped = sorted(p.relative_to(out).as_posix() for p in (out / "release_2").rglob("*.png"))
    assert shipped == sorted(table["image"].unique().to_list())


def test_a_missing_file_is_refused_at_create_naming_row_and_path(tmp_path, shapes):
    (shapes.parent / "images" / "shape_007.png").unlink()
    made = multimodal(tmp_path, shapes, {"kind": "local", "path": str(tmp_path / "out")})
    with pytest.raises(SpecError) as caught:
        api.create(made)
    assert str(caught.value) == "files.column: image at source row 7: " \
        f"{shapes.parent / 'images' / 'shape_007.png'} does not exist"
    assert not Ledger().exists(made.name)


def test_absolute_paths_and_urls_outside_the_root(tmp_path, shapes):
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(b"\x89PNG elsewhere")
    table = pl.read_csv(shapes).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(f"file://{elsewhere}"))
        .when(pl.int_range(pl.len()) == 1).then(pl.lit(str(shapes.parent / "images" / "shape_001.png")))
        .otherwise(pl.col("image")).alias("image"))
    table.write_csv(shapes)
    made = multimodal(tmp_path, shapes, {"kind": "local", "path": str(tmp_path / "out")})
    api.create(made)
    dispatch(Ledger(), made.name, now=LATER)
    out = tmp_path / "out" / made.name
    paths = pl.read_csv(out / "release_0.csv")["image"].to_list()
    assert paths[1] == "release_0/images/shape_001.png"  # under the root: as if relative
    assert paths[0].startswith("release_0/_external/") and paths[0].endswith("/elsewhere.png")
    assert (out / paths[0]).read_bytes() == elsewhere.read_bytes()
    assert verify(made.name).ok


def test_a_file_at_a_url_is_fetched_into_a_private_copy_and_delivered(tmp_path, shapes):
    import fsspec

    os.umask(0o022)  # the usual umask: the fetched copy must be private anyway
    url = f"memory://refs-{uuid.uuid4().hex[:8]}/remote.png"  # fsspec's in-process file system
    with fsspec.open(url, "wb") as out:
        out.write(b"\x89PNG remote")
    table = pl.read_csv(shapes)
    table.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(url)).otherwise(pl.col("image"))
                       .alias("image")).write_csv(shapes)
    made = multimodal(tmp_path, shapes, {"kind": "local", "path": str(tmp_path / "out")})
    api.create(made)
    dispatch(Ledger(), made.name, now=LATER)
    out = tmp_path / "out" / made.name
    shipped = pl.read_csv(out / "release_0.csv")["image"][0]
    assert shipped.startswith("release_0/_external/") and (out / shipped).read_bytes() == b"\x89PNG remote"
    assert verify(made.name).ok
    home = list(settings.home().rglob("*"))  # the fetched copy, files.json at create, the rest
    assert any(p.name == "remote.png" for p in home) and any(p.name == "files.json" for p in home)
    assert [p for p in home if stat.S_IMODE(p.stat().st_mode) != (0o700 if p.is_dir() else 0o600)] == []


def test_the_shapes_example_is_what_the_script_makes(tmp_path):
    fresh = make_shapes(tmp_path / "again", count=None).parent
    committed = ROOT / "deployments" / "data" / "shapes"

    def listing(folder: Path) -> list[Path]:
        return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())

    assert listing(committed) == listing(fresh)
    assert len([p for p in listing(committed) if p.suffix == ".png"]) == 240
    for relative in listing(committed):
        assert (fresh / relative).read_bytes() == (committed / relative).read_bytes(), relative


def test_the_shapes_challenge_plans_and_runs(tmp_path):
    result = CliRunner().invoke(app, ["plan", str(ROOT / "deployments" / "shapes.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    assert [r["rows"] for r in json.loads(result.stdout)["releases"]] == [60, 60, 60, 60]


def test_a_file_changed_after_create_is_refused_at_the_cut(tmp_path, shapes):
    made = multimodal(tmp_path, shapes, {"kind": "local", "path": str(tmp_path / "out")})
    api.create(made)
    changed = shapes.parent / "images" / "shape_002.png"
    changed.write_bytes(changed.read_bytes() + b"tampered")
    run = dispatch(Ledger(), made.name, now=LATER)
    assert [o.release for o in run.failed] == ["release_0"]
    assert f"source {changed}: changed since the challenge was created" in run.failed[0].error
    assert "release_0" not in [o.release for o in run.delivered]
