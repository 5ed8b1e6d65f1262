"""What the kinds' credential resolvers share: plain secret values and named credential blocks.

A destination spec may name a stored credentials block (``credentials_block``). Loading
one is the orchestration layer's business (Prefect blocks, :mod:`ppipe.orchestration.blocks`),
which installs its loader here with :func:`set_block_loader`; the destinations only call
:func:`load_block`, so they never import Prefect.
"""

from __future__ import annotations

from typing import Any, Callable

from ppipe.errors import DestinationError

#: ``loader(name, kind)`` -> a block object whose fields the kind's resolver reads.
BlockLoader = Callable[[str, str], Any]
_loader: BlockLoader | None = None


def set_block_loader(loader: BlockLoader) -> None:
    """Install how a named credentials block is loaded (done by ppipe.orchestration.blocks)."""
    global _loader
    _loader = loader


def secret_value(value: Any) -> Any:
    """The plain value of a pydantic Secret*/SecretStr field (or the value itself)."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def load_block(uri: str, name: str, kind: str) -> Any:
    """The credentials block ``name`` for a ``kind`` destination at ``uri``; DestinationError, one
    line and no secret, when it cannot be loaded."""
    if _loader is None:
        raise DestinationError(uri, f"cannot load credentials block {name!r}: no block loader is installed")
    try:
        return _loader(name, kind)
    except Exception as exc:  # Prefect raises ValueError, httpx errors, ... : one line, no secrets
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise DestinationError(uri, f"cannot load Prefect block {name!r}: {type(exc).__name__}: {first}") from None
