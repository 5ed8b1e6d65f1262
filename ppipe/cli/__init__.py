"""The ``ppipe`` command line: one Typer app per command group, composed here with add_typer.

Each group module (``challenges``, ``access``, ``runs``, ``server``, ``integrity``, ``scenario``, ``participants``) holds
thin commands over :mod:`ppipe.api`; ``common`` turns a PpipeError (or a validation error)
into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import gc
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ppipe.cli import access, challenges, endpoints, integrity, participants, runs, scenario, server
from ppipe.cli.common import err_console
from ppipe.settings import ENVIRONMENT


class OneLineErrors(TyperGroup):
    """Usage errors (unknown option, missing argument, ...) as one line and exit code 2, like ours."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # typer's (vendored click) usage errors
            where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) else ""
            err_console.print(f"error: {where}{exc.format_message()}", markup=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            err_console.print("aborted", markup=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    name="ppipe",
    help="Turn one dataset into an MLOps challenge: releases delivered on a schedule to participants' storage.",
    no_args_is_help=True,
    add_completion=False,
    epilog="Environment: " + "; ".join(f"{name}: {meaning}" for name, meaning in ENVIRONMENT.items()),
    pretty_exceptions_enable=False,
)
for group in (challenges.app, access.app, runs.app, integrity.app, scenario.app, participants.app, endpoints.app):
    app.add_typer(group)
app.add_typer(server.app, name="server")
app.add_typer(participants.participant_app, name="participant")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"ppipe {version('ppipe')}\n")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print ppipe's version and exit.")] = False,
) -> None:
    """Turn one dataset into an MLOps challenge: releases delivered on a schedule to participants' storage."""


def main() -> None:
    # A command imports Prefect, pydantic and polars: hundreds of thousands of long-lived objects,
    # which the collector's default thresholds traverse again and again (0.4 s of a 3.5 s
    # ``ppipe run``), and once more at exit. Collect less often, and leave them out of the last.
    gc.set_threshold(10_000, 10, 10)
    try:
        app()
    finally:
        gc.freeze()
