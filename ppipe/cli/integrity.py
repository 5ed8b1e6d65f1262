"""``ppipe verify``: check that what the ledger says was delivered is really there."""

from __future__ import annotations

import typer

from ppipe.cli.common import Name, command, err_console, group, lazy_module, say

api = lazy_module("ppipe.api")

app = group()


@command(app, "verify")
def verify(name: Name) -> None:
    """Check every delivered release (exists, size, sha256) and that releases add up to the source.

    Exits 1 and names each wrong release when something is off.
    """
    report = api.verify(name)
    for problem in report.problems:
        err_console.print(f"FAILED {problem}", markup=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)
    say(f"ok: {report.checked} delivered objects verified for {name}", wrap=True)
