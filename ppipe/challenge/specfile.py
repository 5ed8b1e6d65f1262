"""Challenge files: YAML in, a validated Challenge out, or one SpecError line naming the field."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ppipe.errors import SpecError
from ppipe.challenge.spec import Challenge
from ppipe.destinations import registry


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def field_path(location: tuple) -> str:
    """pydantic's error location -> 'destinations.1.bucket' (tagged-union tags dropped).

    A destination kind is a union tag only right after a list index ("destinations", 1,
    "s3", "bucket"); anywhere else it is a user's key (source.column_types.s3) and stays.
    """
    parts: list[str] = []
    previous: object = None
    for part in location:
        if isinstance(part, str) and (part.startswith("function-") or "[" in part):
            continue  # a validator or union-member label, not a field
        if not (part in registry.kinds() and isinstance(previous, int)):
            parts.append(str(part))
        previous = part
    return ".".join(parts)


def _spelling_hint(unknown: dict, errors: list[dict]) -> str:
    """' (did you mean 'releases'?)' when a required sibling of an unknown field is missing."""
    parent, name = unknown["loc"][:-1], str(unknown["loc"][-1])
    missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and e["loc"][:-1] == parent]
    close = difflib.get_close_matches(name, missing, n=1)
    return f" (did you mean {close[0]!r}?)" if close else " (check its spelling)"


def spec_error(exc: ValidationError, file: str | None = None) -> SpecError:
    """The first validation error as a SpecError, with a count of the others.

    An unknown field is reported before anything else: a misspelt field also makes the
    real one "required", and the misspelling is what the user has to fix.
    """
    errors = exc.errors(include_url=False)
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    message = first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field" + _spelling_hint(first, errors)
    elif first["type"] == "string_pattern_mismatch" and first["loc"] == ("name",):
        message = f"{first['input']!r} is not a slug: use 1-50 lowercase letters, digits and hyphens, no '/', '..' or spaces"
    elif first["type"] == "missing":
        message = "is required"
    elif first["type"] == "union_tag_invalid":
        message = f"unknown destination kind {first['input'].get('kind')!r}: use {_kinds()}" if isinstance(
            first.get("input"), dict) else message
    elif first["type"] == "union_tag_not_found":
        message = f"needs a 'kind': {_kinds()}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    field = field_path(first["loc"])
    # A model-level check names its own field in the message ("grants.0.service: ...").
    if not field and ": " in message and message.split(": ", 1)[0].replace(".", "").replace("_", "").isalnum():
        field, message = message.split(": ", 1)
    return SpecError(field or "challenge", message + more, file)


def _kinds() -> str:
    """The registered kinds as words: 'local, s3, gcs or drive'."""
    *most, last = registry.kinds()
    return f"{', '.join(most)} or {last}" if most else last


def parse_challenge(data: Any, *, base_dir: Path | None = None, file: str | None = None) -> Challenge:
    """Validate a mapping (from YAML or JSON) into a Challenge; SpecError on the first problem."""
    if not isinstance(data, dict):
        raise SpecError("", "a challenge file must be a mapping of fields (name, source, releases, ...)", file)
    try:
        return Challenge.model_validate(data, context={"base_dir": base_dir or Path.cwd()})
    except ValidationError as exc:
        raise spec_error(exc, file) from None


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("", "no such file", str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError("", f"cannot be read: {exc.__class__.__name__}: {exc}", str(path)) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError("", f"{where}YAML syntax error: {problem}", str(path)) from None


def load_challenge(path: str | Path) -> Challenge:
    """Read and validate a challenge file; relative paths inside resolve against its folder."""
    path = Path(path)
    return parse_challenge(read_yaml(path), base_dir=path.resolve().parent, file=str(path))


def dump_challenge(challenge: Challenge) -> str:
    return yaml.safe_dump(challenge.to_spec(), sort_keys=False, allow_unicode=True)
