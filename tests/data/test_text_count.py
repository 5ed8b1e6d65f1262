"""``ppipe plan`` reads a local CSV or TSV's header and row count without polars
(ppipe.data.text_count): the count must be the one polars gives, which create uses, on every
text; where it cannot be sure, it says so (None) and plan reads the source with polars."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from ppipe.challenge.spec import Source
from ppipe.data import sources, text_count

FIELDS = st.sampled_from(["1", "", "zz", " ", "é", '"q"', '"a\nb"', '"a""b"', '"x,y"', '"\r\n"', '"'])
BREAKS = st.sampled_from(["\n", "\r\n", "\r", "\n\n", ""])


@st.composite
def texts(draw):
    fmt = draw(st.sampled_from(["csv", "tsv"]))
    sep = "," if fmt == "csv" else "\t"
    width = draw(st.integers(1, 3))
    header = sep.join(f"c{i}" for i in range(width))
    if draw(st.booleans()):
        header = "\ufeff" + header
    rows = draw(st.lists(st.tuples(st.lists(FIELDS, min_size=0, max_size=width + 1), BREAKS), max_size=6))
    body = "".join(sep.join(fields) + end for fields, end in rows)
    return fmt, header + draw(st.sampled_from(["\n", "\r\n"])) + body


@hsettings(max_examples=400, deadline=None)
@given(texts())
def test_the_count_and_header_are_polars_own_or_none(tmp_path_factory, case):
    fmt, text = case
    path = tmp_path_factory.mktemp("t") / f"source.{fmt}"
    path.write_bytes(text.encode())
    source = Source(url=str(path), format=fmt)
    counted = text_count.header_and_rows(source)
    if counted is None:
        return
    lf = sources.scan_local(source, path)
    assert counted == (lf.collect_schema().names(), lf.select(pl.len()).collect().item())


@pytest.mark.parametrize("text,rows", [
    ('a,b\n1,"x\ny"\n2,3', 2),  # a quoted break is not a row; a last line without a break is
    ("a,b\n1,2\n\n3,4\n", 3),  # a blank line is a row
    ('a,b\r\n1,"2\r\n3"\r\n', 1),
])
def test_known_counts(tmp_path, text, rows):
    path = tmp_path / "s.csv"
    path.write_bytes(text.encode())
    assert text_count.header_and_rows(Source(url=str(path), format="csv")) == (["a", "b"], rows)


@pytest.mark.parametrize("text", ['a,b\n1,"open\n', "a,b\n", "", "a,\xff\n1,2\n"])
def test_what_it_cannot_count_goes_to_polars(tmp_path, text):
    """An unclosed quote, no data row, an empty file, a header that is not UTF-8."""
    path = tmp_path / "s.csv"
    path.write_bytes(text.encode("latin-1"))
    assert text_count.header_and_rows(Source(url=str(path), format="csv")) is None


def test_a_large_file_goes_to_polars(tmp_path):
    """polars counts a large file faster than its import costs."""
    path = tmp_path / "s.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * (text_count.SMALL // 4))
    assert text_count.header_and_rows(Source(url=str(path), format="csv")) is None
    path.write_bytes(b"a,b\n" + b"1,2\n" * (text_count.SMALL // 4 - 1))
    assert text_count.header_and_rows(Source(url=str(path), format="csv")) == (["a", "b"], text_count.SMALL // 4 - 1)


def test_compressed_parquet_and_remote_sources_are_not_counted_here(tmp_path):
    for source in (Source(url=str(tmp_path / "s.csv.gz"), format="csv", compression="gzip"),
                   Source(url=str(tmp_path / "s.parquet"), format="parquet"),
                   Source(url="s3://bucket/s.csv", format="csv")):
        assert text_count.header_and_rows(source) is None
