"""``ppipe verify``: check that what the ledger says was delivered is really there."""

from __future__ import annotations

from typing import Annotated

import typer

from ppipe.cli import command, console, err_console
from ppipe.delivery.verify import verify as verify_challenge


@command("verify")
def verify(name: Annotated[str, typer.Argument(help="Challenge name.")]) -> None:
    """Check every delivered release (exists, size, sha256) and that releases add up to the source.

    Exits 1 and names each wrong release when something is off.
    """
    report = verify_challenge(name)
    for problem in report.problems:
        err_console.print(f"FAILED {problem}", markup=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)
    console.print(f"ok: {report.checked} delivered objects verified for {name}", markup=False)
