"""Rows of a text rewritten on their way into a release: TSV to CSV, a row number appended.

The byte-range path (:mod:`ppipe.data.staged_text`) writes the source's own lines. Two edits
keep it byte-range work instead of a parse: a TSV becomes CSV by turning every tab into a
comma (staging let through only a TSV none of whose values needs CSV quoting, see
:func:`ppipe.data.text_index.index_text`), and ``output.row_id`` appends ``,<row>`` to each
line before its line break (``,row_id`` to the header), the 0-based source row number, as
the Parquet path's last column. Vectorised with numpy: a Python loop per row would cost more
than the parse it replaces.
"""

from __future__ import annotations

import numpy as np

_NL, _CR, _COMMA, _ZERO = 10, 13, 44, 48
_TAB_TO_COMMA = bytes.maketrans(b"\t", b",")
#: the ASCII digits of 0..999, three a row: the low digits of consecutive numbers, gathered
_LOW = (np.arange(1000)[:, None] // np.array([100, 10, 1]) % 10 + _ZERO).astype(np.uint8)


class RowEditor:
    """Edits a byte range of whole rows fed in pieces, in order (a piece may end inside a row).

    ``ends``: the absolute offset where each row of the range ends (the next row's start);
    ``first``: the number appended to the first row (then one more per row), or ``label``
    (bytes) appended to the only row (the header); neither: no value appended. ``tsv``: tabs
    become commas.
    """

    def __init__(self, ends: np.ndarray, first: int | None = None, label: bytes | None = None, tsv: bool = False):
        self.ends, self.first, self.label, self.tsv = ends, first, label, tsv
        self.appends = first is not None or label is not None
        self.done = 0  # rows written so far
        self.carry = b""  # the start of a row whose end has not been fed yet

    def feed(self, piece, at: int):
        """The edited bytes (a bytes-like object) of the rows that end within what has been fed
        so far; ``piece`` starts at absolute offset ``at``."""
        data = bytes(piece).translate(_TAB_TO_COMMA) if self.tsv else piece
        if not self.appends:
            return data
        complete = int(np.searchsorted(self.ends, at + len(data), side="right"))
        if complete == self.done:
            self.carry += bytes(data)
            return b""
        ends = self.ends[self.done:complete] - at  # within ``data``; the first may be in the carry
        parts = []
        if self.carry:  # the row begun in an earlier piece, whole now: edited on its own
            head = int(ends[0])
            parts.append(self._append(self.carry + bytes(data[:head]), np.array([len(self.carry) + head]), 0))
            ends, data, skipped = ends[1:] - head, data[head:], 1
        else:
            skipped = 0
        if len(ends):
            parts.append(self._append(data[:int(ends[-1])], ends, skipped))
        self.carry = bytes(data[int(ends[-1]) if len(ends) else 0:])
        self.done = complete
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _append(self, rows, ends: np.ndarray, skipped: int) -> np.ndarray:
        """``rows`` (whole rows ending at ``ends``) with each row's value inserted before its line
        break (LF or CRLF; a last row without one gets it at its end)."""
        data = np.frombuffer(rows, np.uint8)
        where = ends.astype(np.int64)
        lf = data[where - 1] == _NL
        where[lf] -= 1
        crlf = lf & (where >= 1)
        crlf[crlf] = data[where[crlf] - 1] == _CR
        where[crlf] -= 1
        if self.label is not None:
            values, lengths = np.frombuffer(b"," + self.label, np.uint8), np.array([1 + len(self.label)])
        else:
            values, lengths = _numbers(self.first + self.done + skipped, len(ends))
        return _insert(data, where, values, lengths)


def _insert(data: np.ndarray, where: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``data`` with ``values`` (``lengths[i]`` bytes before offset ``where[i]``, ascending)
    inserted: as ``np.insert``, without its sort of the (already sorted) positions."""
    out = np.empty(len(data) + len(values), np.uint8)
    # value byte k of the insertion at ``where[i]`` lands at where[i] + k: the k - 1 value bytes
    # before it, of this insertion and the earlier ones, push it right
    inserted = np.repeat(where, lengths) + np.arange(len(values))
    keep = np.ones(len(out), bool)
    keep[inserted] = False
    out[inserted] = values
    out[keep] = data
    return out


def _numbers(first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(the ASCII of ``,first``, ``,first+1``... concatenated, the length of each)."""
    last = first + n - 1
    width = len(str(last))
    numbers = np.arange(first, first + n, dtype=np.int64)
    table = np.empty((n, max(width, 3) + 1), np.uint8)
    table[:, -3:] = _LOW[numbers % 1000]
    if width > 3:  # the high digits change every 1000 rows: computed once per thousand
        highs = np.arange(first // 1000, last // 1000 + 1, dtype=np.int64)
        high = highs[:, None] // 10 ** np.arange(width - 4, -1, -1, dtype=np.int64) % 10 + _ZERO
        table[:, 1:-3] = high.astype(np.uint8)[numbers // 1000 - first // 1000]
    lengths = np.empty(n, np.int64)
    values = []
    for digits in range(len(str(first)), width + 1):  # consecutive numbers: one run per digit count
        lo = max(10 ** (digits - 1) if digits > 1 else 0, first) - first
        hi = min(10 ** digits - 1, last) - first + 1
        lengths[lo:hi] = digits + 1
        run = table[lo:hi, table.shape[1] - digits - 1:]
        run[:, 0] = _COMMA
        values.append(run.ravel())
    return (values[0] if len(values) == 1 else np.concatenate(values)), lengths
