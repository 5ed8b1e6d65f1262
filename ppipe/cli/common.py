"""What every command group shares: one-line errors, consoles, JSON output, common arguments."""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
import types
from typing import Annotated, Any, Callable

import typer
from rich.console import Console

from ppipe.errors import PpipeError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

Name = Annotated[str, typer.Argument(help="Challenge name (in the ledger, or deployments/NAME.yaml).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")]


def group(**kwargs: Any) -> typer.Typer:
    """A command group's Typer app (composed into ``ppipe`` by ppipe.cli with add_typer)."""
    return typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, **kwargs)


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def command(app: typer.Typer, *args: Any, **kwargs: Any) -> Callable:
    """Register a command on ``app`` that reports user errors as one line, exit code 2."""

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except KeyboardInterrupt:  # Ctrl-C (or SIGTERM in a run): what was half-done is undone
                raise fail(f"stopped: ppipe {func.__name__.strip('_')} was interrupted; "
                           "what it had not finished was not kept", 130) from None
            except PpipeError as exc:
                raise fail(str(exc), exc.exit_code) from None
            except Exception as exc:
                if not _is_validation_error(exc):
                    raise
                from ppipe.challenge.specfile import spec_error

                raise fail(str(spec_error(exc))) from None

        return app.command(*args, **kwargs)(wrapper)

    return decorate


def _is_validation_error(exc: Exception) -> bool:
    """A pydantic ValidationError, checked without importing pydantic (a command that never
    loaded a model cannot have raised one): ``ppipe --help`` stays light."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(exc, pydantic.ValidationError)


def lazy_module(name: str) -> types.ModuleType:
    """Module ``name``, executed on first attribute access (importlib's LazyLoader): a command
    group refers to ``api`` at import time, but only the command that runs loads the ledger,
    SQLAlchemy and the model."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def say(text: str, *, wrap: bool = False) -> None:
    """One line (or block) of plain output, never read as rich markup; ``wrap`` folds it at the
    terminal width (else long lines stay whole, e.g. URLs)."""
    console.print(text, markup=False, soft_wrap=not wrap)


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
