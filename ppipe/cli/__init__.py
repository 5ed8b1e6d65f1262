"""The ``ppipe`` command line: thin commands over ppipe's Python API.

Every command lives in a module of this package named for what it acts on; each module
registers its commands on :data:`app` with :func:`command`, which turns a PpipeError (or a
validation error) into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from ppipe.errors import PpipeError
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
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def command(*args: Any, on: typer.Typer | None = None, **kwargs: Any) -> Callable:
    """Register a command on :data:`app` (or the sub-app ``on``) that reports user errors as one line, exit code 2."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except PpipeError as exc:
                raise fail(str(exc), exc.exit_code) from None
            except ValidationError as exc:
                from ppipe.challenge.specfile import spec_error

                raise fail(str(spec_error(exc))) from None

        return (on or app).command(*args, **kwargs)(wrapper)

    return decorate


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def main() -> None:
    app()


# Importing the command modules registers their commands.
from ppipe.cli import challenges, access, integrity, runs  # noqa: E402,F401,I001
