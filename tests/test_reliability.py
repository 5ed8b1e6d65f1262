"""Reliability guarantees, proved against real processes, ledgers and servers.

1. Exactly once per (release, destination): two OS processes dispatching the same challenge
   at the same moment (SQLite and PostgreSQL) claim, upload and record every release row
   exactly once between them, and skip none.
2. Crash safety: a dispatching process SIGKILLed in the middle of a release (while saving
   the audit copy, while copying to a local folder, right after the rename, in the middle of
   a multipart S3 upload) leaves no partial file under a final name and no row marked
   delivered that is not there; its claim expires and the next run delivers the release.
3. Outage: a destination that is down makes the upload task retry with backoff (Prefect
   flow), the rows end failed naming the destination, nothing is marked delivered; once
   the server is back the next run delivers. A source that changed or vanished after
   staging fails the rows with a SourceError naming it and nothing is dispatched from it.

The dispatching processes are ``tests/reliability_child.py``: the real ``ppipe.delivery``
code, observed (uploads and won claims logged) and, for the crash tests, stopped at one
point so the test can kill it there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from ppipe import api, settings
from ppipe import delivery
from ppipe.destinations.local.client import LocalFolder
from ppipe.destinations.s3.client import S3Bucket
from ppipe.errors import SourceError
from ppipe.ledger import Ledger, utcnow
from ppipe.data.staging import check_source_unchanged
from ppipe.delivery.verify import verify
from tests.support import reliability_child as child
from tests.support.helpers import make_challenge, write_csv
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
LEASE = 2.0  # PPIPE_CLAIM_LEASE of the crash tests, seconds
RACE_RELEASES = 12  # each one a chance for two racing processes to both win a row
#: Every release of a challenge starting here (a day ago, 60 s apart) is due now.
START = (utcnow() - timedelta(days=1)).replace(microsecond=0)


# --- helpers -------------------------------------------------------------------------------


def register(tmp_path: Path, name: str, *, rows: int, releases, destinations: list[dict], **overrides):
    """Write the source, create the destination folders, and create the challenge (staged, in the ledger)."""
    write_csv(tmp_path / "data.csv", rows)
    (tmp_path / "out").mkdir(exist_ok=True)
    challenge = make_challenge(
        tmp_path, name=name, releases=releases, destinations=destinations,
        schedule={"start": START.isoformat(), "every": "60s"}, **overrides,
    )
    api.create(challenge)
    return challenge


def s3_destination(endpoint: str, bucket: str | None = None) -> dict:
    return {"kind": "s3", "bucket": bucket or f"ppipe-rel-{uuid.uuid4().hex[:12]}", "region": "eu-west-1",
            "endpoint_url": endpoint}


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1")


def uploads(log: Path, *, owner: str | None = None) -> Counter:
    """How many times each (destination, release file) was uploaded (manifest.json left out)."""
    return Counter((dest, name) for who, dest, name in child.read_log(log / "uploads.log")
                   if name != "manifest.json" and owner in (None, who))


class Children:
    """Dispatching child processes of one test; any still running at the end is killed."""

    def __init__(self, log: Path):
        self.log = log
        self.procs: list[subprocess.Popen] = []

    def spawn(self, name: str, owner: str, *args: str) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        with open(self.log / f"{owner}.stderr", "wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.reliability_child", "--name", name, "--owner", owner,
                 "--log", str(self.log), *args],
                cwd=ROOT, env=env, stdout=stderr, stderr=stderr,
            )
        proc.owner = owner
        self.procs.append(proc)
        return proc

    def stderr(self, proc) -> str:
        return (self.log / f"{proc.owner}.stderr").read_text(errors="replace")[-3000:]

    def wait_for(self, *paths: Path, timeout: float = 60) -> None:
        """Until every path exists; fails at once (with the child's stderr) if a child exits meanwhile."""
        deadline = time.monotonic() + timeout
        while not all(path.exists() for path in paths):
            for proc in self.procs:
                if proc.poll() is not None:
                    pytest.fail(f"{proc.owner} exited with {proc.returncode} before {paths}:\n{self.stderr(proc)}")
            if time.monotonic() > deadline:
                pytest.fail(f"none of the children reached {paths} within {timeout} s")
            time.sleep(0.01)

    def finish(self, proc, timeout: float = 60) -> None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{proc.owner} did not finish within {timeout} s:\n{self.stderr(proc)}")
        assert proc.returncode == 0, f"{proc.owner} exited with {proc.returncode}:\n{self.stderr(proc)}"

    def kill(self, proc) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def children(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    procs = Children(log)
    yield procs
    procs.close()


# --- 1. exactly once per (release, destination) --------------------------------------------


def test_two_processes_dispatching_together_deliver_each_release_once_per_destination(
        tmp_path, ledger_url, s3_server, children):
    """Twelve releases due, two destinations (a folder, an S3 bucket), two processes released from one
    barrier: every row is claimed once (by one of them), uploaded once, delivered with attempts == 1;
    none is skipped."""
    name = "race"
    register(tmp_path, name, rows=50 * RACE_RELEASES, releases=RACE_RELEASES,
             destinations=[{"kind": "local", "path": str(tmp_path / "out")}, s3_destination(s3_server)])
    log, go = children.log, children.log / "go"
    procs = [children.spawn(name, f"child-{i}", "--ready", str(log / f"ready-{i}"), "--go", str(go))
             for i in range(2)]
    children.wait_for(*(log / f"ready-{i}" for i in range(2)))
    go.touch()
    for proc in procs:
        children.finish(proc)

    rows = Ledger(ledger_url).releases(name)
    claims = child.read_log(log / "claims.log")
    won = Counter(int(row_id) for _, row_id in claims)
    twice = {key: n for key, n in uploads(log).items() if n != 1}
    facts = f"claims won per row id {dict(won)}; uploaded other than once: {twice}"
    assert len(rows) == 2 * RACE_RELEASES and {row.index for row in rows} == set(range(RACE_RELEASES))
    assert [(row.index, row.status, row.attempts) for row in rows] == [(row.index, "delivered", 1) for row in rows], facts
    assert won == Counter({row.id: 1 for row in rows}), f"a row was claimed twice, or not at all: {facts}"
    winner = {int(row_id): owner for owner, row_id in claims}
    assert {row.id: row.claimed_by for row in rows} == winner
    # Both dispatched (each wrote its report). Releases reach a destination in order, so the
    # process that holds release k there holds back the other one's k+1: one may win every row.
    assert all((log / f"report-child-{i}.json").exists() for i in range(2)), "a process did not dispatch"
    assert set(winner.values()) <= {"child-0", "child-1"}

    assert uploads(log) == Counter({(row.destination, f"{row.name}.csv"): 1 for row in rows})
    report = verify(name, Ledger(ledger_url))
    assert report.ok and report.checked == 2 * RACE_RELEASES, report.problems


# --- 2. crash safety -----------------------------------------------------------------------


def _stale_claim_gone(row) -> None:
    """Sleep until ``row``'s lease (renewed by the dead run's heartbeat until it died) is over."""
    assert row.claim_expires_at is not None
    delay = (row.claim_expires_at - utcnow()).total_seconds()
    assert delay <= LEASE + 0.5, f"the claim holds {delay:.1f} s more, longer than the {LEASE} s lease"
    time.sleep(max(0.0, delay) + 0.05)


@pytest.mark.parametrize("point", ["save", "copy", "renamed", "s3-part"])
def test_a_run_killed_in_the_middle_of_a_release_leaves_nothing_half_done(
        tmp_path, request, monkeypatch, children, point):
    """The child delivers release_0, then is SIGKILLed inside release_1 at ``point``. Nothing partial
    is under a final name, release_0 stays delivered and intact, release_1 is not delivered (running,
    its lease running out), release_2 untouched; after the lease a normal run delivers the rest."""
    name, target = "crash", "release_1.csv"
    monkeypatch.setenv("PPIPE_CLAIM_LEASE", str(LEASE))
    folder = (tmp_path / "out" / name).resolve()
    extra: list[str] = ["--folder", str(folder)]
    if point == "s3-part":
        endpoint = request.getfixturevalue("s3_server")
        destination = s3_destination(endpoint)
        # 64 KiB parts make each ~180 KiB release a multipart upload; moto must accept small parts.
        monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 0)
        extra += ["--chunksize", str(64 * 1024)]
    else:
        destination = {"kind": "local", "path": str(tmp_path / "out")}
    register(tmp_path, name, rows=36_000, releases=3, destinations=[destination])
    blocked = children.log / "blocked"
    proc = children.spawn(name, "doomed", "--block", point, "--target", target, "--blocked", str(blocked), *extra)
    children.wait_for(blocked)

    ledger = Ledger()
    if point == "copy":  # stuck but alive: the heartbeat keeps the claim well past one lease
        time.sleep(LEASE + 0.5)
        stuck = ledger.releases(name)[1]
        assert stuck.status == "running" and stuck.claim_expires_at > utcnow()
        assert not ledger.claim(stuck.id, "intruder"), "a live run's claim was taken over"
    children.kill(proc)

    r0, r1, r2 = ledger.releases(name)
    assert (r0.status, r0.attempts) == ("delivered", 1)
    assert (r1.status, r1.claimed_by, r1.attempts) == ("running", "doomed", 1)
    assert (r2.status, r2.attempts) == ("planned", 0)
    after_kill = verify(name, ledger)  # delivered means there, intact; the rest is due and said so
    assert after_kill.checked == 1 and [p.split(":")[0] for p in after_kill.problems] == ["release_1", "release_2"]
    assert all("not delivered" in problem for problem in after_kill.problems), after_kill.problems

    audit = settings.releases_dir(name)
    if point == "save":
        assert not (audit / target).exists(), "a release file appeared under its final name before it was complete"
        assert list(audit.glob(f".{target}.*.tmp")), "the child was not stopped while saving"
    else:
        assert (audit / target).is_file()
    if point == "s3-part":
        client, bucket = s3_client(endpoint), destination["bucket"]
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{name}/").get("Contents", [])
        assert [obj["Key"] for obj in listed] == [f"{name}/release_0.csv"], "a partial object is visible"
        pending = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert [upload["Key"] for upload in pending] == [f"{name}/{target}"], "the child was not stopped mid-upload"
    elif point == "renamed":  # killed after the atomic rename: the whole file is there
        assert (folder / target).read_bytes() == (audit / target).read_bytes()
    else:
        assert not (folder / target).exists(), "a partial file is visible under its final name"
        if point == "copy":
            parts = list(folder.glob(f".{target}.*.part"))
            assert parts and 0 < parts[0].stat().st_size < (audit / target).stat().st_size, (
                "the child was not stopped halfway through the copy")

    _stale_claim_gone(r1)
    for cls in (LocalFolder, S3Bucket):
        monkeypatch.setattr(cls, "upload", child.counting_upload(cls.upload, children.log / "uploads.log", "next"))
    report = delivery.dispatch(ledger, name, owner="next")
    assert report is not None and report.ok, report and (report.failed, report.problems)

    r0, r1, r2 = ledger.releases(name)
    assert [(r.status, r.attempts) for r in (r0, r1, r2)] == [("delivered", 1), ("delivered", 2), ("delivered", 1)]
    assert r1.claimed_by == "next"
    dest = r0.destination
    before = {(dest, "release_0.csv"): 1} | ({} if point == "save" else {(dest, target): 1})
    assert uploads(children.log, owner="doomed") == Counter(before)
    again = {(dest, target): 1, (dest, "release_2.csv"): 1}
    if point == "renamed":  # it was all there already: recorded, not uploaded again
        del again[(dest, target)]
        assert [o.reused for o in report.delivered if o.index == 1] == [True]
    assert uploads(children.log, owner="next") == Counter(again)
    final = verify(name, ledger)
    assert final.ok and final.checked == 3, final.problems
    # and the dead run's temporaries are cleaned up by the next run (they are older than a lease)
    assert not list(audit.glob(".*.tmp")), "the killed save's temporary file was left behind"
    if point == "s3-part":
        assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads"), "the killed upload was not aborted"
    else:
        assert not list(folder.glob(".*.part")), "the killed copy's temporary file was left behind"


def test_a_dead_runs_claim_is_taken_over_by_a_run_given_an_explicit_time(tmp_path):
    """``dispatch(now=...)`` (``ppipe run --now``, the flow's ``now``) sets the schedule's clock; a
    lease is wall-clock time. A claim whose lease is over must be taken over whatever ``now`` says."""
    name = "stale"
    register(tmp_path, name, rows=90, releases=3, destinations=[{"kind": "local", "path": str(tmp_path / "out")}])
    ledger = Ledger()
    first = ledger.releases(name)[0]
    assert ledger.claim(first.id, "dead-run", lease=timedelta(0))  # its run died: the lease is over at once
    report = delivery.dispatch(ledger, name, now=START + timedelta(minutes=30), owner="next")
    assert [(o.index, o.status) for o in report.outcomes] == [(0, "delivered"), (1, "delivered"), (2, "delivered")]
    assert (ledger.releases(name)[0].claimed_by, ledger.releases(name)[0].attempts) == ("next", 2)


# --- 3. outages ----------------------------------------------------------------------------


class OwnS3:
    """A moto S3 server of this test's own on a fixed port, that can go down and come back."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            inner = self.server._server
            self.server.stop()
            inner.server_close()  # stop() leaves the socket listening: new connections would hang, not fail
            self.server = None


@pytest.fixture
def own_s3(monkeypatch):
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1", "AWS_MAX_ATTEMPTS": "1",
                       "PPIPE_CONNECT_TIMEOUT": "2"}.items():
        monkeypatch.setenv(key, value)
    server = OwnS3()
    server.start()
    yield server
    server.stop()


def upload_task_runs(flow_run_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        return sorted(((run, client.read_task_run_states(run.id)) for run in runs if run.name.startswith("upload release")),
                      key=lambda pair: pair[0].name)


@pytest.mark.slow
def test_a_destination_outage_is_retried_with_backoff_then_delivered_when_it_is_back(
        tmp_path, prefect_harness, own_s3):
    """The S3 server goes down as the first upload starts: each upload task runs 3 times (2 retries,
    0.1 s then 0.2 s apart), the rows end failed naming the destination, nothing is delivered.
    The server comes back (empty: the bucket is gone): the next run recreates it and delivers."""
    from ppipe.orchestration.flow import dispatch_challenge

    name = "outage"
    destination = s3_destination(own_s3.url)
    uri = f"s3://{destination['bucket']}/{name}"
    register(tmp_path, name, rows=60, releases=2, destinations=[destination],
             delivery={"retries": 2, "retry_delay": "0.1s", "timeout": "60s"})

    def outage(release: str, step: str, detail: str) -> None:
        if step == "upload":
            own_s3.stop()

    with delivery.watch(outage):
        state = dispatch_challenge(challenge=name, return_state=True)
    assert state.is_failed()
    assert uri in state.message and "cannot reach" in state.message, state.message
    rows = Ledger().releases(name)
    # release_1 waits while release_0 is not delivered there (releases arrive in order)
    assert [(row.status, row.attempts) for row in rows] == [("failed", 1), ("planned", 0)]
    for row in rows[:1]:
        assert row.error.startswith(f"destination {uri}: ") and "cannot reach" in row.error, row.error

    runs = upload_task_runs(state.state_details.flow_run_id)
    assert [run.name for run, _ in runs] == [f"upload release_{i} -> {uri}" for i in range(1)]
    for run, states in runs:
        assert run.run_count == 3 and run.state.is_failed(), (run.name, run.run_count, run.state)
        waits = [s.state_details.scheduled_time - s.timestamp for s in states if s.name == "AwaitingRetry"]
        assert [round(w.total_seconds(), 1) for w in waits] == [0.1, 0.2], waits

    # Back on the same port. moto keeps its state in this process's memory across servers, so
    # drop the (empty: nothing went out) bucket, as a restarted in-memory server would have.
    own_s3.start()
    client = s3_client(own_s3.url)
    if destination["bucket"] in [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]:
        assert client.list_objects_v2(Bucket=destination["bucket"])["KeyCount"] == 0
        client.delete_bucket(Bucket=destination["bucket"])
    state = dispatch_challenge(challenge=name, return_state=True)
    assert state.is_completed(), state.message
    assert [(row.status, row.attempts) for row in Ledger().releases(name)] == [("delivered", 2), ("delivered", 1)]
    assert [run.run_count for run, _ in upload_task_runs(state.state_details.flow_run_id)] == [1, 1]
    report = verify(name)
    assert report.ok and report.checked == 2, report.problems


@pytest.mark.parametrize("change", ["changed", "removed"])
def test_a_source_changed_or_gone_after_staging_is_reported_and_nothing_is_dispatched(tmp_path, change):
    """release_0 goes out; then the source changes (or disappears): the next run fails release_1
    and release_2 with a SourceError naming the source, and delivers nothing from it."""
    name = "drift"
    challenge = register(tmp_path, name, rows=90, releases=3,
                         destinations=[{"kind": "local", "path": str(tmp_path / "out")}])
    ledger = Ledger()
    first = delivery.dispatch(ledger, name, now=START + timedelta(seconds=30))
    assert [(o.index, o.status) for o in first.outcomes] == [(0, "delivered")]
    folder, audit = tmp_path / "out" / name, settings.releases_dir(name)
    manifest = (folder / "manifest.json").read_bytes()

    source = tmp_path / "data.csv"
    if change == "changed":
        write_csv(source, 95)
        reason = "changed since it was staged"
    else:
        source.unlink()
        reason = "not found"
    with pytest.raises(SourceError) as raised:
        check_source_unchanged(challenge)
    assert str(raised.value).startswith(f"source {source}: ") and reason in str(raised.value)

    report = delivery.dispatch(ledger, name)
    assert [(o.index, o.status) for o in report.outcomes] == [(1, "failed")]  # release_2 waits for release_1
    rows = ledger.releases(name)
    assert [row.status for row in rows] == ["delivered", "failed", "planned"]
    for row in rows[1:2]:
        assert row.error.startswith(f"source {source}: ") and reason in row.error, row.error
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "release_0.csv"]
    assert (folder / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in audit.iterdir()) == ["manifest.json", "release_0.csv"]
    checked = verify(name, ledger)  # release_0 intact; release_1 and release_2 due, not delivered
    assert checked.checked == 1 and [p.split(":")[0] for p in checked.problems] == ["release_1", "release_2"]
