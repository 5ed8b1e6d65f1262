"""The ``prefect`` command, run with one fix to the server on SQLite; ppipe starts its standing
local server through it (``python -m ppipe.orchestration.prefect_server server start ...``).

The fix: Prefect 3.8 takes a global concurrency slot (``/v2/concurrency_limits/increment`` and
``increment-with-lease``) by reading the limits and then updating them in one *deferred*
transaction. On SQLite such a transaction cannot take the write lock once another connection
has committed since its read: it fails at once with "database is locked", without waiting out
the busy timeout. The server answers 503 and Prefect's client retries two seconds later (its
backoff has no setting). While a flow runs the server keeps writing (task runs, events, logs),
so an upload task of a one-release ``ppipe run`` waited about 2 s for its slot in three runs
of four. Taking the write lock first (``BEGIN IMMEDIATE``, as Prefect itself does for its other
read-then-write transactions on SQLite) makes the acquisition wait its turn instead. On
PostgreSQL the setting is not read: nothing changes there.
"""

from __future__ import annotations

import functools
import sys


def take_slots_with_the_write_lock() -> None:
    """Make the server's slot acquisition begin its SQLite transaction IMMEDIATE (idempotent)."""
    from prefect.server.api import concurrency_limits_v2 as endpoints
    from prefect.server.database.configurations import SQLITE_BEGIN_MODE

    acquire = endpoints._acquire_concurrency_slots
    if getattr(acquire, "write_lock_first", False):
        return

    @functools.wraps(acquire)
    async def acquire_with_the_write_lock(*args, **kwargs):
        # read when the session opens its connection, i.e. at the acquisition's first statement
        mode = SQLITE_BEGIN_MODE.set("IMMEDIATE")
        try:
            return await acquire(*args, **kwargs)
        finally:
            SQLITE_BEGIN_MODE.reset(mode)

    acquire_with_the_write_lock.write_lock_first = True
    endpoints._acquire_concurrency_slots = acquire_with_the_write_lock


def create_app(*args, **kwargs):
    """Prefect's server app with the fix, for ``uvicorn --factory`` (Prefect's test harness)."""
    take_slots_with_the_write_lock()
    from prefect.server.api.server import create_app as prefects_app

    return prefects_app(*args, **kwargs)


def main() -> int:
    take_slots_with_the_write_lock()
    from prefect.cli import app

    sys.argv[0] = "prefect"
    return app()


if __name__ == "__main__":
    sys.exit(main())
