"""What no output could hold faithfully, judged from a source's column names alone (no data read):
a repeated header name, a name with ppipe's reserved prefix (its working columns), a row_id
column the source already has, declared types of columns it does not have. Staging checks it
on polars' schema; ``ppipe plan`` on the header it read itself.
"""

from __future__ import annotations

from ppipe.challenge.spec import Challenge
from ppipe.data.staged import ROW_ID
from ppipe.errors import SourceError
from ppipe.urls import shown

#: the prefix of the columns ppipe adds while staging (the shuffle's row number and positions)
RESERVED = "__ppipe_"


def check_names(challenge: Challenge, names: list[str]) -> None:
    """SourceError naming the source and the first problem of its column ``names``."""
    url = shown(challenge.source.url)
    repeated = _repeated(names)
    if repeated is not None:
        raise SourceError(url, f"has a duplicate column name {repeated!r} in its header: rename one of them")
    reserved = next((name for name in names if name.startswith(RESERVED)), None)
    if reserved is not None:
        raise SourceError(url, f"has a column named {reserved!r}: names starting with {RESERVED!r} are ppipe's own; "
                               "rename it")
    if challenge.output.row_id and ROW_ID in names:
        raise SourceError(url, f"already has a column named {ROW_ID!r}: set output.row_id to false or rename it")
    unknown = sorted(set(challenge.source.column_types) - set(names))
    if unknown:
        raise SourceError(url, f"source.column_types names columns it does not have: {', '.join(unknown)}")


def _repeated(names: list[str]) -> str | None:
    """A name the header holds twice: as read, or as polars renames the second 'x' ('x_duplicated_0')."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    for name in names:
        base, _, number = name.rpartition("_duplicated_")
        if base and number.isdigit() and base in seen:
            return base
    return None
