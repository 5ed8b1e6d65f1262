"""The byte-range fast path: CSV released as CSV (NDJSON as NDJSON), unshuffled, is staged as a
byte-offset index and every release is the header plus the source's own lines (with row_id, a
row number appended to each: see also test_edited_rows.py)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os

import polars as pl
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from ppipe.data.manifest import write_manifest
from ppipe.data import release_files, sources, staging, text_index
from ppipe import settings
from ppipe.errors import SourceError
from tests.support.data_helpers import csv_rows, make_challenge, write_nasty_csv

NASTY_HEADER = b"zip,text,amount,day,note"
NASTY_ROWS = [  # each data row's bytes without its line ending
    b'00501,"a, b",1.50,2024-01-02,""',
    b'"","say ""hi""\nnext line",-3,2024-02-03,x',  # a line break inside quotes is not a row end
    "0,é ü 漢字 🙂,,,trailing space ".encode(),
    b'10,"",1e3,2024-12-31,""""',
    b'00007,"multi\r\nline, with CRLF inside",,,',
]


def nasty_bytes(ending: bytes, trailing: bool) -> tuple[bytes, bytes, list[bytes]]:
    """(file bytes, header bytes, row bytes) of the nasty CSV with ``ending`` line breaks."""
    header = NASTY_HEADER + ending
    rows = [row + ending for row in NASTY_ROWS]
    if not trailing:
        rows[-1] = rows[-1][: -len(ending)]
    return header + b"".join(rows), header, rows


def deliver(challenge):
    staged = staging.stage(challenge)
    return staged, [release_files.write_release(challenge, staged, r) for r in challenge.plan(staged.rows)]


def assert_byte_exact(challenge, staged, saved, header: bytes, rows: list[bytes]) -> None:
    """Every release is the header plus exactly its rows' source bytes; all releases cover all rows."""
    covered = []
    for release, file in zip(challenge.plan(staged.rows), saved):
        expected = header + b"".join(rows[release.start:release.stop])
        data = file.path.read_bytes()
        assert data == expected, (release, data, expected)
        assert file.rows == release.rows and file.bytes == len(data)
        assert file.sha256 == hashlib.sha256(data).hexdigest()
        covered.append(data[len(header):])
    assert b"".join(covered) == b"".join(rows)


# --- CSV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("trailing", [True, False], ids=["trailing-newline", "no-trailing-newline"])
@pytest.mark.parametrize("releases", [1, 2, 5])
def test_nasty_csv_releases_are_the_source_bytes(tmp_path, ending, trailing, releases):
    data, header, rows = nasty_bytes(ending, trailing)
    path = tmp_path / "nasty.csv"
    path.write_bytes(data)
    challenge = make_challenge(str(path), releases=releases)
    staged, saved = deliver(challenge)
    assert staged.kind == "offsets" and staged.rows == len(NASTY_ROWS)
    assert staged.text == path.resolve()  # a local uncompressed source is cut from in place
    assert staged.source_sha256 == hashlib.sha256(data).hexdigest()
    assert_byte_exact(challenge, staged, saved, header, rows)
    # and the values parse back exactly as the source's
    parsed = [r for f in saved for r in csv_rows(f.path)[1:]]
    assert parsed == csv_rows(data)[1:]


def test_index_rows_equal_polars_count(tmp_path):
    path = write_nasty_csv(tmp_path / "nasty.csv")
    staged = staging.stage(make_challenge(str(path)))
    polars_rows = sources.scan_local(make_challenge(str(path)).source, path).select(pl.len()).collect().item()
    assert staged.rows == polars_rows == sources.count_rows(make_challenge(str(path)).source) == 4


def test_blank_lines_are_rows_as_polars_counts_them(tmp_path):
    path = tmp_path / "d.csv"
    rows = [b"1,2\n", b"\n", b"3,4\n", b"\n"]
    path.write_bytes(b"a,b\n" + b"".join(rows))
    challenge = make_challenge(str(path), releases=2)
    staged, saved = deliver(challenge)
    assert staged.kind == "offsets" and staged.rows == 4
    assert_byte_exact(challenge, staged, saved, b"a,b\n", rows)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_csv_is_cut_from_a_staged_copy(tmp_path, compression):
    data, header, rows = nasty_bytes(b"\n", True)
    packed = gzip.compress(data) if compression == "gzip" else zstandard.ZstdCompressor().compress(data)
    path = tmp_path / ("d.csv.gz" if compression == "gzip" else "d.csv.zst")
    path.write_bytes(packed)
    challenge = make_challenge(str(path), releases=2)
    staged, saved = deliver(challenge)
    assert staged.kind == "offsets"
    assert staged.text.parent == settings.staging_dir(challenge.name) and staged.text.read_bytes() == data
    assert staged.source_sha256 == hashlib.sha256(packed).hexdigest()  # the raw source, as before
    assert_byte_exact(challenge, staged, saved, header, rows)
    assert not any((settings.home() / "fetched").rglob("data"))
    assert staging.stage(challenge) == staged  # reloaded as it was
    staged.text.unlink()  # a lost staged copy is an unfinished staging: staged again
    assert staging.load_staged(challenge) is None
    again = staging.stage(challenge)
    assert again.text.read_bytes() == data and again.rows == staged.rows


@pytest.mark.parametrize("row_id", [False, True])
def test_many_chunks_and_blocks(tmp_path, monkeypatch, row_id):
    """Quotes and line breaks straddling chunk and block boundaries (tiny chunks and blocks); with
    row_id, numbers of 1 to 4 digits appended (and edited rows straddling them too)."""
    monkeypatch.setattr(text_index, "BLOCK", 7)
    monkeypatch.setattr(text_index, "SCAN_CHUNK", 21)
    rows = [f'{i},"x\n""{i}"", y",{"é" * (i % 4)}\r\n'.encode() for i in range(1200)]
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b,c\r\n" + b"".join(rows))
    challenge = make_challenge(str(path), releases=7, output={"row_id": row_id})
    staged, saved = deliver(challenge)
    assert staged.kind == "offsets" and staged.rows == 1200
    if row_id:
        rows = [row[:-2] + b",%d\r\n" % i for i, row in enumerate(rows)]
    assert_byte_exact(challenge, staged, saved, b"a,b,c,row_id\r\n" if row_id else b"a,b,c\r\n", rows)


def test_manifest_of_a_fast_path_challenge(tmp_path):
    path = write_nasty_csv(tmp_path / "nasty.csv")
    challenge = make_challenge(str(path), releases=2)
    staged, saved = deliver(challenge)
    delivered = [{**r.to_json(), "sha256": f.sha256, "bytes": f.bytes} for r, f in zip(challenge.plan(staged.rows), saved)]
    manifest = json.loads(write_manifest(challenge, staged, delivered).read_text())
    assert [(c["name"], c["type"], c["origin"]) for c in manifest["columns"]] == [
        (n, "string", "source") for n in ("zip", "text", "amount", "day", "note")
    ]
    assert manifest["source"]["rows"] == 4 and manifest["total_rows_delivered"] == 4
    assert manifest["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


# --- which path is taken -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "output, kind",
    [
        ({}, "offsets"),
        ({"shuffle": True, "seed": 1}, "parquet"),
        ({"row_id": True}, "offsets"),  # the row number appended to each line: tests/data/test_edited_rows.py
        ({"format": "parquet"}, "parquet"),
        ({"format": "ndjson"}, "parquet"),
        ({"format": "json"}, "parquet"),
    ],
)
def test_the_fast_path_only_where_bytes_can_be_kept(tmp_path, output, kind):
    path = write_nasty_csv(tmp_path / "nasty.csv")
    challenge = make_challenge(str(path), releases=2, output=output)
    staged, _ = deliver(challenge)
    assert staged.kind == kind and staging.load_staged(challenge).kind == kind
    folder = settings.staging_dir(challenge.name)
    assert sorted(p.name for p in folder.iterdir()) == (
        ["blocks.crc32", "offsets.i64", "staged.json"] if kind == "offsets" else ["data.arrow", "staged.json"]
    )


def test_tsv_needing_csv_quotes_is_converted_through_parquet(tmp_path):
    rows = [["a", "b"], ["007", "x,y"], ["1.10", 'q"q'], ["", "z"]]
    path = tmp_path / "d.tsv"
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")
    staged, saved = deliver(make_challenge(str(path), releases=2))
    assert staged.kind == "parquet"  # "x,y" and 'q"q' need quoting as CSV: polars writes them
    assert [r for f in saved for r in csv_rows(f.path)[1:]] == rows[1:]


@pytest.mark.parametrize(
    "content",
    [b'a,b\nx""y,1\n2,3\n', b'a,b\n1, "q"\n2,3\n', b'a,b\nx"y"z,1\n2,3\n'],
    ids=["doubled-in-unquoted", "quote-after-space", "quotes-inside-unquoted"],
)
def test_quotes_outside_rfc4180_fall_back_to_parquet(tmp_path, content):
    """polars reads these quotes literally; the index would not know where rows end: Parquet path."""
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    staged, saved = deliver(make_challenge(str(path), releases=1))
    assert staged.kind == "parquet" and staged.rows == 2
    expected = pl.read_csv(path, infer_schema=False)
    assert pl.read_csv(saved[0].path, infer_schema=False).equals(expected)


def test_an_index_disagreeing_with_polars_is_refused(tmp_path, monkeypatch):
    path = write_nasty_csv(tmp_path / "nasty.csv")
    challenge = make_challenge(str(path))
    real = staging._polars_rows
    monkeypatch.setattr(staging, "_polars_rows", lambda source, lf: (real(source, lf)[0], 5))
    with pytest.raises(SourceError, match="cannot be indexed safely: 4 rows by line breaks, 5 counted by polars"):
        staging.stage(challenge)
    assert staging.load_staged(challenge) is None
    assert not settings.staging_dir(challenge.name).exists()


@pytest.mark.parametrize(
    "content, problem",
    [(b"a,b\n1,2\n3,4,5\n", "ragged"), (b"a,b\n1,\xff\n", "UTF-8"), (b"", "empty"), (b"a,b\n", "no data rows"),
     (b"a,b", "no data rows"), (b'a,b\n"open,1\n', "cannot stage")],
)
def test_bad_csv_is_still_refused(tmp_path, content, problem):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    challenge = make_challenge(str(path), releases=1)
    with pytest.raises(SourceError, match=problem):
        staging.stage(challenge)
    assert staging.load_staged(challenge) is None
    folder = settings.staging_dir(challenge.name)
    assert not folder.exists() or os.listdir(folder) == []


# --- change detection --------------------------------------------------------------------------


def test_changed_source_is_reported_not_mixed(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"n\n" + b"".join(b"%06d\n" % i for i in range(300_000)))  # ~2 MB: several blocks
    challenge = make_challenge(str(path), releases=3)
    staged = staging.stage(challenge)
    first, second, third = challenge.plan(staged.rows)
    release_files.write_release(challenge, staged, first)
    # change one byte in the middle, keeping the size and the modification time: the
    # fingerprint (size, mtime, first and last MiB) cannot see it, the block CRCs do
    info = path.stat()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] = ord("9") if data[middle] != ord("9") else ord("8")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    staging.check_source_unchanged(challenge)  # the fingerprint did not notice
    with pytest.raises(SourceError, match="changed since it was staged"):
        release_files.write_release(challenge, staged, second)
    assert sorted(p.name for p in settings.releases_dir(challenge.name).iterdir()) == ["release_0.csv"]
    # an ordinary change (new size, new mtime) is caught by the fingerprint first
    path.write_bytes(b"n\n1\n")
    with pytest.raises(SourceError, match="changed since it was staged"):
        release_files.write_release(challenge, staged, third)
    with pytest.raises(SourceError, match="changed since it was staged"):
        staging.stage(challenge)


def test_source_replaced_by_rename_is_reported(tmp_path):
    path = write_nasty_csv(tmp_path / "nasty.csv")
    challenge = make_challenge(str(path), releases=2)
    staged = staging.stage(challenge)
    other = tmp_path / "other.csv"
    other.write_bytes(path.read_bytes().replace(b"00501", b"00502"))
    os.replace(other, path)
    with pytest.raises(SourceError, match="changed since it was staged"):
        release_files.write_release(challenge, staged, challenge.plan(staged.rows)[0])


# --- NDJSON ------------------------------------------------------------------------------------


def test_ndjson_releases_are_the_source_lines(tmp_path):
    rows = [
        json.dumps({"id": "007", "v": 1.25, "ok": True, "t": "a\nb"}).encode() + b"\n",
        json.dumps({"id": "8", "v": None, "ok": False, "t": "é"}, ensure_ascii=False).encode() + b"\r\n",
        b'{"id":"9","v":2.5,  "ok":true,"t":""}\n',
        b'{"id": "10", "v": 3, "ok": null, "t": "x"}',  # no trailing newline
    ]
    path = tmp_path / "d.ndjson"
    path.write_bytes(b"".join(rows))
    challenge = make_challenge(str(path), releases=3, output={"format": "ndjson"})
    staged, saved = deliver(challenge)
    assert staged.kind == "offsets" and staged.rows == 4
    assert staged.columns == {"id": "string", "v": "float", "ok": "bool", "t": "string"}
    assert set(staged.types_origin.values()) == {"source"}
    assert_byte_exact(challenge, staged, saved, b"", rows)


def test_compressed_ndjson(tmp_path):
    rows = [json.dumps({"i": i}).encode() + b"\n" for i in range(50)]
    path = tmp_path / "d.ndjson.gz"
    path.write_bytes(gzip.compress(b"".join(rows)))
    challenge = make_challenge(str(path), releases=4, output={"format": "ndjson"})
    staged, saved = deliver(challenge)
    assert staged.kind == "offsets"
    assert_byte_exact(challenge, staged, saved, b"", rows)


@pytest.mark.parametrize(
    "content, source_extra",
    [(b'{"a":1}\n\n{"a":2}\n', {}), (b'{"a":1}\n{"a":2}\n\n', {}), (b' {"a":1}\n{"a":2}\n', {}),
     (b'{"a":1}\n{"a":2}\n', {"column_types": {"a": "string"}})],
    ids=["blank-line", "blank-last-line", "leading-blank", "declared-types"],
)
def test_ndjson_outside_the_fast_path(tmp_path, content, source_extra):
    path = tmp_path / "d.ndjson"
    path.write_bytes(content)
    challenge = make_challenge({"url": str(path), **source_extra}, releases=1, output={"format": "ndjson"})
    staged, saved = deliver(challenge)
    assert staged.kind == "parquet" and staged.rows == 2
    assert [json.loads(line)["a"] for line in saved[0].path.read_text().splitlines()] in ([1, 2], ["1", "2"])


def test_ndjson_to_csv_goes_through_parquet(tmp_path):
    path = tmp_path / "d.ndjson"
    path.write_bytes(b'{"a":1}\n{"a":2}\n')
    staged, saved = deliver(make_challenge(str(path), releases=1))
    assert staged.kind == "parquet" and csv_rows(saved[0].path) == [["a"], ["1"], ["2"]]


# --- property: any CSV the csv module writes ---------------------------------------------------

FIELD = st.text(alphabet=st.sampled_from(list('ab,"\n\r é0 ')), max_size=6)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_cols=st.integers(min_value=1, max_value=4),
    data=st.data(),
    ending=st.sampled_from(["\n", "\r\n"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    trailing=st.booleans(),
    n_releases=st.integers(min_value=1, max_value=4),
    row_id=st.booleans(),
    chunk=st.sampled_from([7, 64, 1 << 20]),
)
def test_random_csv_releases_are_the_source_bytes(
    tmp_path_factory, n_cols, data, ending, quoting, trailing, n_releases, row_id, chunk
):
    """Without row_id, the source's bytes; with it (a row number appended to each line), the
    values the Parquet path delivers for the same challenge."""
    rows = data.draw(st.lists(st.lists(FIELD, min_size=n_cols, max_size=n_cols), min_size=n_releases, max_size=30))

    def line(fields):
        out = io.StringIO()
        csv.writer(out, lineterminator=ending, quoting=quoting).writerow(fields)
        return out.getvalue().encode()

    header = line([f"c{i}" for i in range(n_cols)])
    row_bytes = [line(r) for r in rows]
    if not trailing and row_bytes[-1] != ending.encode():  # an empty last line needs its line break
        row_bytes[-1] = row_bytes[-1][: -len(ending)]
    folder = tmp_path_factory.mktemp("r")
    os.environ["PPIPE_HOME"] = str(folder / "home")
    path = folder / "d.csv"
    path.write_bytes(header + b"".join(row_bytes))
    challenge = make_challenge(str(path), releases=n_releases, output={"row_id": row_id})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(text_index, "BLOCK", chunk)
        patch.setattr(text_index, "SCAN_CHUNK", chunk * 3)
        staged, saved = deliver(challenge)
        if row_id:  # the byte pass may leave a text with a lone CR or a blank line to the Parquet path
            parquet = through_parquet(challenge, patch)
            assert csv_frame(saved).equals(csv_frame(parquet))
            return
    assert staged.kind == "offsets" and staged.rows == len(rows)
    assert_byte_exact(challenge, staged, saved, header, row_bytes)


def through_parquet(challenge, monkeypatch, name="parquet-path"):
    """The same challenge (another name) delivered by the Parquet path."""
    with monkeypatch.context() as patch:
        patch.setattr(staging, "byte_range_eligible", lambda _: False)
        staged, saved = deliver(challenge.model_copy(update={"name": name}))
    assert staged.kind == "parquet"
    return saved


def csv_frame(saved) -> pl.DataFrame:
    """Every release's rows in one frame, every field a string."""
    return pl.concat([pl.read_csv(f.path, infer_schema=False) for f in saved])


# --- validation in the byte pass: UTF-8 and fields per row --------------------------------------


def stage_bytes(tmp_path, content: bytes, name: str = "d.csv"):
    path = tmp_path / name
    path.write_bytes(content)
    challenge = make_challenge(str(path), releases=1)
    return challenge, staging.stage(challenge)


def assert_refused(tmp_path, content: bytes, *fragments: str) -> str:
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    challenge = make_challenge(str(path), releases=1)
    with pytest.raises(SourceError) as info:
        staging.stage(challenge)
    message = str(info.value)
    assert all(f in message for f in fragments), (message, fragments)
    assert "\n" not in message and str(path) in message
    assert staging.load_staged(challenge) is None
    folder = settings.staging_dir(challenge.name)
    assert not folder.exists() or os.listdir(folder) == []
    return message


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"a,b,c\n1,2,3\n4,5,6,7\n", "more fields than the header (ragged CSV): row 2 has 4 fields, the header has 3"),
        (b"a,b,c\n1,2,3\n4,5\n7,8,9\n", "fewer fields than the header (ragged CSV): row 2 has 2 fields, the header has 3"),
        (b"a,b,c\r\n1,2,3\r\n4\r\n", "fewer fields than the header (ragged CSV): row 2 has 1 field, the header has 3"),
        (b"a,b,c\n1,2,3\n4,5", "row 2 has 2 fields, the header has 3"),  # last line, no line break
        (b"a,b\n1,2\n,\n,,\n", "row 3 has 3 fields, the header has 2"),  # "," is 2 empty fields: fine
        (b"a,b\n1,2\n \n", "row 2 has 1 field, the header has 2"),  # a space is not a blank line
        (b'a,b\n"x,\ny",1\n"p,q",r,s\n', "row 2 has 3 fields, the header has 2"),
        (b'a,b\n1,2\n"x\n,y",1,"z,\n"\n', "row 2 has 3 fields, the header has 2"),
        (b'"a,b",c\n1,2,3\n', "row 1 has 3 fields, the header has 2"),  # a quoted comma in the header
    ],
)
def test_ragged_rows_are_refused_naming_the_row(tmp_path, content, expected):
    assert_refused(tmp_path, content, "cannot stage: has a row with", expected)


def test_quoted_delimiters_and_line_breaks_are_not_ragged(tmp_path):
    rows = [b'"1,2,3","x\n,y",z\n', b'",",",\r\n,","""a,""b"\n', b'4,"",\n', b'"\n\n",",,,,",""""\n']
    challenge, staged = stage_bytes(tmp_path, b"a,b,c\n" + b"".join(rows))
    assert staged.kind == "offsets" and staged.rows == 4
    assert csv_rows(b"a,b,c\n" + b"".join(rows))[1:] == [
        ["1,2,3", "x\n,y", "z"], [",", ",\r\n,", '"a,"b'], ["4", "", ""], ["\n\n", ",,,,", '"']
    ]


@pytest.mark.parametrize(
    "content, rows",
    [(b"a,b\n1,2\n\n3,4\n", 3), (b"a,b\r\n1,2\r\n\r\n\r\n3,4\r\n", 4), (b"a\n1\n\n2\n", 3), (b"a,b\n1,2\n\r", 2)],
    ids=["LF", "CRLF", "one-column", "lone-CR-last"],
)
def test_blank_lines_are_rows_not_ragged(tmp_path, content, rows):
    """A blank line is a row, as polars and the csv module count it (the record with no values),
    whatever the header's width; see text_index._CsvCheck."""
    _, staged = stage_bytes(tmp_path, content)
    assert staged.kind == "offsets" and staged.rows == rows


def test_a_leading_blank_line_goes_to_parquet(tmp_path):
    """polars skips it and reads the next line as the header: the index would not agree."""
    _, staged = stage_bytes(tmp_path, b"\na,b\n1,2\n")
    assert staged.kind == "parquet" and staged.rows == 1 and staged.columns == {"a": "string", "b": "string"}


@pytest.mark.parametrize(
    "content, fragments",
    [
        (b"a,b\n1,\xff\n", ("is not valid UTF-8 text (byte 6, in row 1)",)),
        (b"a,b\n1,2\n3,\xe2\x82\n", ("is not valid UTF-8 text (byte 10, in row 2)",)),  # a character cut short
        (b"a,b\n1,2\n3,\xc3", ("is not valid UTF-8 text (byte 10, in row 2", "cut short")),  # at the end
        (b"a,\xc0\xaf\n1,2\n", ("is not valid UTF-8 text (byte 2, in the header)",)),  # overlong "/"
        (b"a,b\n1,\xed\xa0\x80\n", ("is not valid UTF-8 text (byte 6, in row 1)",)),  # a surrogate
    ],
)
def test_invalid_utf8_is_refused_with_its_place(tmp_path, content, fragments):
    assert_refused(tmp_path, content, "cannot stage:", *fragments)


def test_invalid_utf8_in_the_middle_of_a_large_file(tmp_path, monkeypatch):
    monkeypatch.setattr(text_index, "BLOCK", 1 << 14)
    monkeypatch.setattr(text_index, "SCAN_CHUNK", 1 << 16)  # ~45 chunks
    rows = [f"{i},é{i % 7},🙂 x\n".encode() for i in range(200_000)]
    bad_row = 123_457
    rows[bad_row] = rows[bad_row].replace("🙂".encode(), b"\xf0\x9f\x99")  # 3 of the emoji's 4 bytes
    data = b"n,e,s\n" + b"".join(rows)
    at = data.index(b"\xf0\x9f\x99 ")
    assert_refused(tmp_path, data, f"is not valid UTF-8 text (byte {at}, in row {bad_row + 1})")


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 8, 13])
def test_validation_across_every_chunk_boundary(tmp_path, monkeypatch, chunk):
    """With tiny chunks every delimiter, line break, quote and multi-byte character straddles
    some chunk end: valid text is accepted, the ragged row and the bad byte are found exactly."""
    monkeypatch.setattr(text_index, "BLOCK", chunk)
    monkeypatch.setattr(text_index, "SCAN_CHUNK", chunk)
    rows = [b'1,"x,\r\ny",\xc3\xa9\xe6\xbc\xa2\r\n', b'"",\xf0\x9f\x99\x82,""""\r\n', b"\r\n", b',,"\n"\r\n', b'7,8,9']
    header = b"a,\xc3\xa9,c\r\n"
    home = tmp_path / "homes"
    for case in ("valid", "ragged", "utf8"):
        monkeypatch.setenv("PPIPE_HOME", str(home / case))
        folder = tmp_path / case
        folder.mkdir()
        if case == "valid":
            challenge, staged = stage_bytes(folder, header + b"".join(rows))
            assert staged.kind == "offsets" and staged.rows == 5
            saved = [release_files.write_release(challenge, staged, r) for r in challenge.plan(staged.rows)]
            assert_byte_exact(challenge, staged, saved, header, rows)
        elif case == "ragged":
            assert_refused(folder, header + b"".join(rows[:3]) + b'"\n",,"x,y",\r\n' + rows[4],
                           "more fields than the header", "row 4 has 4 fields, the header has 3")
        else:
            broken = rows[1].replace(b"\x99\x82", b"\x99,")  # the emoji's last byte is a comma
            data = header + rows[0] + broken + b"".join(rows[2:])
            at = data.index(b"\xf0\x9f\x99,")
            assert_refused(folder, data, f"is not valid UTF-8 text (byte {at}, in row 2)")


def csv_line(fields: list[str], ending: str, quoting: int) -> bytes:
    """One CSV line as the csv module writes it, ending with ``ending``. Written with a CRLF
    terminator, so that a field with a lone CR is quoted too (the csv module quotes only the
    terminator's characters, and reads a lone CR as a line break where polars does not)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n", quoting=quoting).writerow(fields)
    return out.getvalue().removesuffix("\r\n").encode() + ending.encode()


FIELD_WIDE = st.text(alphabet=st.sampled_from(list('ab,"\n\r é0 漢🙂')), max_size=6)


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_cols=st.integers(min_value=1, max_value=4),
    data=st.data(),
    ending=st.sampled_from(["\n", "\r\n"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    trailing=st.booleans(),
    chunk=st.sampled_from([1, 2, 3, 4, 7, 64, 1 << 20]),
    ragged=st.sampled_from([None, "more", "fewer"]),
)
def test_random_csv_validation(tmp_path_factory, n_cols, data, ending, quoting, trailing, chunk, ragged):
    """Valid CSVs (written by the csv module, blank lines among them) are accepted with the csv
    module's row count; the same with one row given a field more or fewer is refused, naming it."""
    rows = data.draw(st.lists(st.lists(FIELD_WIDE, min_size=n_cols, max_size=n_cols), min_size=1, max_size=25))
    rows = [[] if data.draw(st.integers(0, 9)) == 0 else r for r in rows]  # some blank lines
    bad = None
    if ragged == "fewer" and n_cols == 1:
        ragged = "more"
    if ragged:
        bad = data.draw(st.integers(0, len(rows) - 1))
        fields = rows[bad] or [""] * n_cols
        rows[bad] = fields + [data.draw(FIELD_WIDE)] if ragged == "more" else fields[:-1]
    line_bytes = [csv_line(r, ending, quoting) for r in rows]
    if not trailing and line_bytes[-1] != ending.encode():  # an empty last line needs its line break
        line_bytes[-1] = line_bytes[-1][: -len(ending)]
    content = csv_line([f"c{i}" for i in range(n_cols)], ending, quoting) + b"".join(line_bytes)
    folder = tmp_path_factory.mktemp("v")
    os.environ["PPIPE_HOME"] = str(folder / "home")
    old = text_index.BLOCK, text_index.SCAN_CHUNK
    text_index.BLOCK = text_index.SCAN_CHUNK = chunk
    try:
        path = folder / "d.csv"
        path.write_bytes(content)
        challenge = make_challenge(str(path), releases=1)
        if bad is None:
            staged = staging.stage(challenge)
            assert staged.kind == "offsets"
            assert staged.rows == len(csv_rows(content)) - 1 == len(rows)
        else:
            with pytest.raises(SourceError, match=f"{ragged} fields than the header .*: row {bad + 1} has"):
                staging.stage(challenge)
            assert staging.load_staged(challenge) is None
    finally:
        text_index.BLOCK, text_index.SCAN_CHUNK = old
