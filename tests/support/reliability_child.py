"""A dispatching process for tests/test_reliability.py: ``python -m tests.support.reliability_child ...``.

It runs the real ``ppipe.delivery.dispatch`` against the ledger named by the environment
(``PPIPE_HOME``, ``PPIPE_DATABASE_URL``, ``PPIPE_CLAIM_LEASE``). Instrumentation only
*observes* ppipe, never replaces it:

- every call of a destination's ``upload`` appends ``owner<TAB>destination<TAB>name`` to
  ``<log>/uploads.log`` before the real method runs, and every claim this process wins
  appends ``owner<TAB>row id`` to ``<log>/claims.log`` (one ``os.write`` of one line in
  append mode, so lines of concurrent processes never interleave);
- ``--ready``/``--go`` make a barrier: the process says it is ready (everything imported,
  ledger open) and waits for the go file, so two processes start dispatching together;
- ``--block POINT --target FILE`` makes the process stop for good at one point inside the
  real work on release file FILE, after writing ``--blocked`` (the test then SIGKILLs it):

  ``save``     the audit copy is written and fsynced (under its temporary name), not renamed;
  ``copy``     half of the bytes are copied to the local destination's file (its temporary ``.part``);
  ``renamed``  the local destination file was renamed into place, the folder not yet fsynced
               (so the upload never returns and the ledger is never told);
  ``s3-part``  the first part of a multipart upload is stored in S3, the upload not completed
               (``--chunksize`` makes a small release file multipart).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

BLOCK_FOR = 120.0  # seconds; the test kills the process long before


def record(path: str | os.PathLike, line: str) -> None:
    """Append one line to ``path`` with a single write (atomic between processes for short lines)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_log(path: str | os.PathLike) -> list[list[str]]:
    """The lines of a log written by :func:`record`, split on tabs."""
    path = Path(path)
    return [line.split("\t") for line in path.read_text().splitlines()] if path.exists() else []


def counting_upload(real, log: str | os.PathLike, owner: str):
    """``Destination.upload`` that records the call in ``log``, then does the real upload."""

    def upload(self, local_file, name):
        record(log, f"{owner}\t{self.uri}\t{name}")
        return real(self, local_file, name)

    return upload


def counting_claim(real, log: str | os.PathLike, owner: str):
    """``Ledger.claim`` that records each claim it won in ``log``."""

    def claim(self, release_id, claim_owner, **kwargs):
        won = real(self, release_id, claim_owner, **kwargs)
        if won:
            record(log, f"{owner}\t{release_id}")
        return won

    return claim


def observe(log_dir: Path, owner: str) -> None:
    """Record uploads and won claims of this process (see the module doc)."""
    from ppipe.destinations.local.client import LocalFolder
    from ppipe.destinations.s3.client import S3Bucket
    from ppipe.ledger import Ledger

    for cls in (LocalFolder, S3Bucket):
        cls.upload = counting_upload(cls.upload, log_dir / "uploads.log", owner)
    Ledger.claim = counting_claim(Ledger.claim, log_dir / "claims.log", owner)


def _stop_here(blocked: Path) -> None:
    blocked.write_text(str(os.getpid()))
    time.sleep(BLOCK_FOR)
    os._exit(3)  # never reached in a passing test: the parent kills us first


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def block_at(point: str, challenge: str, target: str, blocked: Path, folder: Path | None,
             chunksize: int | None) -> None:
    """Stop the process for good at ``point`` while it works on release file ``target`` (``folder``:
    the local destination's folder)."""
    from ppipe import settings

    if point in ("save", "renamed"):
        real_fsync = os.fsync

        audit = settings.releases_dir(challenge)

        def fsync(fd):
            real_fsync(fd)
            path = Path(_fd_path(fd))
            if point == "save" and path.parent == audit and target in path.name:
                _stop_here(blocked)  # the audit copy is written and fsynced (under a temporary name), not renamed
            if point == "renamed" and path == folder and (folder / target).exists():
                _stop_here(blocked)  # LocalFolder fsyncs its folder right after renaming into place

        os.fsync = fsync
    elif point == "copy":
        real_copy = shutil.copyfileobj

        def copyfileobj(src, dst, length=0):
            path = Path(_fd_path(dst.fileno())) if hasattr(dst, "fileno") else Path()
            if path.parent == folder and target in path.name:  # the destination file being written
                data = src.read()
                dst.write(data[: len(data) // 2])
                dst.flush()
                _stop_here(blocked)
            return real_copy(src, dst, length) if length else real_copy(src, dst)

        shutil.copyfileobj = copyfileobj
    elif point == "s3-part":
        import s3fs

        from ppipe.destinations.s3.client import S3Bucket

        if chunksize:
            S3Bucket.multipart_chunksize = chunksize
        real_call = s3fs.S3FileSystem._call_s3

        async def _call_s3(self, method, *args, **kwargs):
            out = await real_call(self, method, *args, **kwargs)
            if method == "upload_part" and str(kwargs.get("Key", "")).rsplit("/", 1)[-1] == target:
                _stop_here(blocked)
            return out

        s3fs.S3FileSystem._call_s3 = _call_s3
    else:
        raise SystemExit(f"unknown --block point {point!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reliability_child")
    parser.add_argument("--name", required=True)
    parser.add_argument("--owner", required=True)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--ready", type=Path)
    parser.add_argument("--go", type=Path)
    parser.add_argument("--block")
    parser.add_argument("--target")
    parser.add_argument("--blocked", type=Path)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--chunksize", type=int)
    args = parser.parse_args(argv)

    from ppipe import delivery
    from ppipe.ledger import Ledger

    observe(args.log, args.owner)
    if args.block:
        block_at(args.block, args.name, args.target, args.blocked, args.folder, args.chunksize)
    ledger = Ledger()
    ledger.challenge(args.name)  # ledger open, connection made: the start line is as close as it gets
    if args.ready:
        args.ready.write_text(str(os.getpid()))
    if args.go:
        deadline = time.monotonic() + 60
        while not args.go.exists():
            if time.monotonic() > deadline:
                print("no go signal within 60 s", file=sys.stderr)
                return 4
            time.sleep(0.001)
    report = delivery.dispatch(ledger, args.name, owner=args.owner)
    outcomes = [[o.index, o.destination, o.status, o.error] for o in report.outcomes] if report else None
    (args.log / f"report-{args.owner}.json").write_text(json.dumps(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
