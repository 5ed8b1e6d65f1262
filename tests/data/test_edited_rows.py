"""The byte-range path with edited lines: a CSV released with row_id (``,<row>`` appended to
each line) and a TSV released as CSV (tabs become commas). Each release carries the values the
Parquet path delivers for the same challenge (a TSV: the very bytes)."""

from __future__ import annotations

import polars as pl
import pytest

from ppipe.errors import SourceError
from tests.data.test_fast_path import csv_frame, deliver, through_parquet
from tests.support.data_helpers import csv_rows, make_challenge, write_nasty_csv


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("trailing", [True, False], ids=["trailing-newline", "no-trailing-newline"])
@pytest.mark.parametrize("releases", [1, 2, 4])
def test_csv_with_row_id_appends_the_row_number_to_each_line(tmp_path, monkeypatch, ending, trailing, releases):
    lines = [b"zip,text,n", b'00501,"a, b",1', b'"","say ""hi""' + ending + b'next",2', b"7,,", b'8,"x",""']
    data = ending.join(lines) + (ending if trailing else b"")
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    challenge = make_challenge(str(path), releases=releases, output={"row_id": True})
    staged, saved = deliver(challenge)
    assert staged.kind == "offsets" and staged.rows == 4
    expected_lines = [b"zip,text,n,row_id"] + [line + b",%d" % i for i, line in enumerate(lines[1:])]
    got = b""
    for release, file in zip(challenge.plan(4), saved):
        text = file.path.read_bytes()
        assert text.startswith(b"zip,text,n,row_id" + ending)
        assert file.rows == release.rows and file.bytes == len(text)
        got += text[len(b"zip,text,n,row_id" + ending):]
    assert got == ending.join(expected_lines[1:]) + (ending if trailing else b"")
    assert csv_frame(saved).equals(csv_frame(through_parquet(challenge, monkeypatch)))


def test_nasty_csv_with_row_id_has_the_values_of_the_parquet_path(tmp_path, monkeypatch):
    path = write_nasty_csv(tmp_path / "nasty.csv")
    challenge = make_challenge(str(path), releases=3, output={"row_id": True})
    staged, saved = deliver(challenge)
    assert staged.kind == "offsets"
    assert csv_frame(saved).equals(csv_frame(through_parquet(challenge, monkeypatch)))
    assert csv_frame(saved)["row_id"].to_list() == ["0", "1", "2", "3"]


def test_a_csv_with_a_blank_line_and_row_id_goes_to_parquet(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\n1,2\n\n3,4\n")  # a blank line: ",<row>" would be a ragged row
    staged, saved = deliver(make_challenge(str(path), releases=1, output={"row_id": True}))
    assert staged.kind == "parquet"
    assert csv_rows(saved[0].path) == [["a", "b", "row_id"], ["1", "2", "0"], ["", "", "1"], ["3", "4", "2"]]


@pytest.mark.parametrize("row_id", [False, True])
def test_tsv_to_csv_is_cut_by_bytes_as_the_parquet_path_writes_it(tmp_path, monkeypatch, row_id):
    rows = [["a", "b", "c"], ["007", "x y", ""], ["", "é 漢", "1.10"], ["q", "", "z"]]
    path = tmp_path / "d.tsv"
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    challenge = make_challenge(str(path), releases=2, output={"row_id": row_id})
    staged, saved = deliver(challenge)
    assert staged.kind == "offsets" and staged.rows == 3
    assert staged.columns == {"a": "string", "b": "string", "c": "string"}
    parquet = through_parquet(challenge, monkeypatch)
    assert [f.path.read_bytes() for f in saved] == [f.path.read_bytes() for f in parquet]
    assert [(f.sha256, f.rows) for f in saved] == [(f.sha256, f.rows) for f in parquet]


@pytest.mark.parametrize(
    "content",
    [b"a\tb\n1\t2,3\n", b'a\tb\n1\t"2"\n', b"a\tb\r\n1\t2\r\n", b"a\tb\n1\n", b"a\tb\n1\t2\n\n3\t4\n"],
    ids=["comma", "quote", "CR", "fewer-fields", "blank-line"],
)
def test_tsv_outside_the_byte_path_goes_to_parquet_as_before(tmp_path, content):
    path = tmp_path / "d.tsv"
    path.write_bytes(content)
    staged, saved = deliver(make_challenge(str(path), releases=1))
    assert staged.kind == "parquet"
    expected = pl.read_csv(path, separator="\t", quote_char=None, infer_schema=False)
    assert pl.read_csv(saved[0].path, infer_schema=False).equals(expected)


def test_a_tsv_row_longer_than_the_header_is_refused_as_before(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"a\tb\n1\t2\t3\n")
    with pytest.raises(SourceError, match="more fields than the header"):
        deliver(make_challenge(str(path), releases=1))
