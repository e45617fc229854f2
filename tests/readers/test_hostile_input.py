"""Hostile and unlucky files: each bad record is quarantined alone, in bounded memory; nothing fails the version."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from assets.readers import parquet
from assets.readers.drop import read_drop
from assets.readers.mapping import RecordMapping
from assets.readers.protocol import IngestError


def test_json_nested_beyond_the_recursion_limit_is_quarantined_alone(tmp_path: Path) -> None:
    deep = '{"text": ' + "[" * 100_000 + "]" * 100_000 + ', "label": "a"}'
    (tmp_path / "t.ndjson").write_text(
        f'{{"text": "before", "label": "a"}}\n{deep}\n{{"text": "after", "label": "a"}}\n'
    )
    drop = read_drop(tmp_path)
    assert drop.documents["text"].to_list() == ["before", "after"]
    assert drop.quarantine.select("rule", "source_row").rows() == [("json_depth", 2)]


def test_a_lone_surrogate_in_a_utf16_file_rejects_that_line_only(tmp_path: Path) -> None:
    text = "text,label\nvpn down,a\nbroken \ud800 line,a\nprinter jam,b\n"
    (tmp_path / "t.csv").write_bytes(b"\xff\xfe" + text.encode("utf-16-le", "surrogatepass"))
    drop = read_drop(tmp_path)
    assert drop.documents["text"].to_list() == ["vpn down", "printer jam"]
    assert drop.quarantine.select("rule", "source_row").rows() == [("invalid_bytes", 3)]


@pytest.mark.parametrize("name", ["t.csv", "t.ndjson"])
def test_a_line_over_the_record_limit_is_quarantined_with_its_size(tmp_path: Path, name: str) -> None:
    big = "x" * 5000
    rows = (
        ["text,label", "short,a", f"{big},a", "after,b"]
        if name == "t.csv"
        else [
            '{"text": "short", "label": "a"}',
            json.dumps({"text": big, "label": "a"}),
            '{"text": "after", "label": "b"}',
        ]
    )
    (tmp_path / name).write_text("\n".join(rows) + "\n")
    drop = read_drop(tmp_path, RecordMapping(max_record_bytes=1024))
    assert drop.documents["text"].to_list() == ["short", "after"]
    (reject,) = drop.quarantine.iter_rows(named=True)
    assert reject["rule"] == "record_too_large" and reject["source_row"] == (3 if name == "t.csv" else 2)
    assert "record of 50" in reject["reason"] and len(reject["record"]) <= 200


def test_a_text_file_over_the_record_limit_is_quarantined(tmp_path: Path) -> None:
    (tmp_path / "vpn").mkdir()
    (tmp_path / "vpn" / "big.txt").write_text("y" * 4096)
    (tmp_path / "vpn" / "small.txt").write_text("vpn down")
    drop = read_drop(tmp_path, RecordMapping(max_record_bytes=1024))
    assert drop.documents["text"].to_list() == ["vpn down"]
    assert drop.quarantine["rule"].to_list() == ["record_too_large"]


def test_an_oversized_json_array_element_is_quarantined_and_its_neighbours_arrive(tmp_path: Path) -> None:
    records = [{"text": "first", "label": "a"}, {"text": "x" * 500, "label": "b"}, {"text": "last", "label": "c"}]
    (tmp_path / "t.json").write_text(json.dumps(records))
    drop = read_drop(tmp_path, RecordMapping(max_record_bytes=100))
    assert drop.documents["text"].to_list() == ["first", "last"]
    assert drop.quarantine.select("rule", "source_row").rows() == [("record_too_large", 2)]


# Peak RSS of the reading process itself: VmHWM belongs to the process image, while ru_maxrss would carry the
# pytest parent's high-water mark across fork and exec.
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024"

MEASURE = """
import json, sys
from pathlib import Path
from assets.readers.drop import read_drop
imported_mb = PEAK
drop = read_drop(Path(sys.argv[1]))
print(json.dumps({"texts": drop.documents["text"].to_list(), "rules": drop.quarantine["rule"].to_list(),
                  "rows": drop.quarantine["source_row"].to_list(),
                  "longest_record": max(map(len, drop.quarantine["record"].to_list()), default=0),
                  "imported_mb": imported_mb, "peak_mb": PEAK}))
""".replace("PEAK", PEAK)


def _measured_read(folder: Path) -> dict:
    """Read a drop in a fresh process and return what it kept, what it quarantined, and its memory high-water marks."""
    run = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_gzip_bomb_of_one_gib_ingests_its_neighbours_in_bounded_memory(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "bomb.csv.gz", "wb", compresslevel=1) as bomb:
        bomb.write(b"text,label\nbefore,a\n")
        chunk = b"a" * (1 << 20)
        for _ in range(1024):  # one line of 1 GiB
            bomb.write(chunk)
        bomb.write(b",a\nafter,b\n")
    assert (tmp_path / "bomb.csv.gz").stat().st_size < 8 << 20
    run = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["texts"] == ["before", "after"] and result["rules"] == ["record_too_large"]
    assert result["peak_mb"] < 1024, result["peak_mb"]


@pytest.mark.parametrize("kind", ["file-outside", "folder", "dangling"])
def test_a_symbolic_link_in_a_drop_is_refused_by_name_and_leaves_no_debris(tmp_path: Path, kind: str) -> None:
    from assets.readers.arrivals import RegistrationError, find_ready_drops, land_new_version
    from assets.storage.home import RefineryHome

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secrets.csv").write_text("text,label\nroot password,a\n")
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "t.csv").write_text("text,label\nvpn down,a\n")
    link = drop / "linked.csv" if kind != "folder" else drop / "more"
    link.symlink_to(
        {"file-outside": outside / "secrets.csv", "folder": outside, "dangling": tmp_path / "gone.csv"}[kind]
    )
    with pytest.raises(IngestError, match=rf"{link.name}: a symbolic link"):
        read_drop(drop)
    home = RefineryHome(tmp_path / "home").ensure()
    with pytest.raises((IngestError, RegistrationError), match="a symbolic link"):
        land_new_version(home, drop, set())
    assert list(home.landing.iterdir()) == []  # nothing landed, no staging folder
    landed = home.landing / "by-hand"
    landed.mkdir()
    (landed / "t.csv").write_text("text,label\nvpn down,a\n")
    (landed / "linked.csv").symlink_to(outside / "secrets.csv")
    (landed / "_SUCCESS").touch()
    scan = find_ready_drops(home.landing, set(), {})
    assert scan.ready == [] and "a symbolic link" in scan.refused["by-hand"]


def test_a_quoted_field_spanning_more_than_a_thousand_lines_is_one_record(tmp_path: Path) -> None:
    long_field = "\n".join(f"line {i} of a pasted log" for i in range(1200))
    (tmp_path / "t.csv").write_text(f'text,label\nfirst,a\n"{long_field}",b\nlast,c\n')
    drop = read_drop(tmp_path)
    assert drop.quarantine.is_empty()
    assert drop.documents["label"].to_list() == ["a", "b", "c"] and drop.documents["text"][1] == long_field


def test_a_stray_quote_still_costs_only_its_own_line(tmp_path: Path) -> None:
    rows = ["text,label", "ok one,a", '"broken,b'] + [f"row {i},c" for i in range(50)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    drop = read_drop(tmp_path)
    assert drop.documents.height == 51 and drop.quarantine.select("rule", "source_row").rows() == [("csv_parse", 3)]


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Привет у меня не работает принтер на третьем этаже", "cp1251"),
        ("プリンターが動きません。よろしくお願いします", "shift_jis"),
    ],
)
def test_a_non_latin_legacy_encoding_is_detected_not_read_as_cp1252(tmp_path: Path, text: str, encoding: str) -> None:
    rows = "text,label\n" + "".join(f"{text} {i},a\n" for i in range(20))
    (tmp_path / "t.csv").write_bytes(rows.encode(encoding))
    drop = read_drop(tmp_path)
    assert drop.quarantine.is_empty() and drop.documents["text"][3] == f"{text} 3"


def test_utf8_lines_in_a_cp1252_file_are_quarantined_not_garbled(tmp_path: Path) -> None:
    body = "text,label\n" + "".join(f"Caf\xe9 cr\xe8me num\xe9ro {i},a\n" for i in range(20))
    data = body.encode("cp1252") + "Café déjà vu in UTF-8,b\n".encode() + "fin,c\n".encode("cp1252")
    (tmp_path / "t.csv").write_bytes(data)
    drop = read_drop(tmp_path)
    assert drop.documents["text"][0] == "Café crème numéro 0" and drop.documents["text"][-1] == "fin"
    (reject,) = drop.quarantine.iter_rows(named=True)
    assert reject["rule"] == "mixed_encoding" and reject["source_row"] == 22 and "Café déjà vu" in reject["record"]


def test_a_json_gzip_bomb_streams_in_bounded_memory_and_quarantines_the_giant_element(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "bomb.json.gz", "wb", compresslevel=1) as bomb:
        bomb.write(b'[{"text": "small", "label": "a"}, {"text": "')
        chunk = b"a" * (1 << 20)
        for _ in range(1024):
            bomb.write(chunk)
        bomb.write(b'", "label": "a"}, {"text": "after", "label": "b"}]')
    run = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["texts"] == ["small", "after"] and result["rules"] == ["record_too_large"]
    assert result["peak_mb"] < 1024


def test_an_over_long_utf16_line_is_skipped_whole_not_split_into_records(tmp_path: Path) -> None:
    text = "text,label\nshort,a\n" + "x" * 250 + ",b\nlast,c\n"
    (tmp_path / "t.csv").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    drop = read_drop(tmp_path, RecordMapping(max_record_bytes=100))
    assert drop.documents["text"].to_list() == ["short", "last"]
    assert drop.quarantine.select("rule", "source_row").rows() == [("record_too_large", 3)]


def test_damaged_or_linked_control_files_refuse_their_folder_only(tmp_path: Path) -> None:
    from assets.readers.arrivals import find_ready_drops

    landing = tmp_path / "landing"
    for name in ("listed", "linked", "nested", "fine"):
        (landing / name).mkdir(parents=True)
        (landing / name / "t.csv").write_text(f"text,label\nvpn down in {name},a\n")
        (landing / name / "_SUCCESS").touch()
    (landing / "listed" / "_version.yaml").write_text("- not\n- a mapping\n")
    (landing / "nested" / "_version.yaml").write_text("[" * 5000 + "]" * 5000)  # would exhaust Python's stack
    (tmp_path / "elsewhere.yaml").write_text("text_column: text\n")
    (landing / "linked" / "_source.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    scan = find_ready_drops(landing, set(), {})
    assert scan.ready == ["fine", "linked"]  # the mapping file is read when the version is ingested
    assert "not a version manifest" in scan.refused["listed"]
    assert "nested deeper than 64 levels" in scan.refused["nested"]
    with pytest.raises(IngestError, match=r"_source\.yaml: a symbolic link"):
        read_drop(landing / "linked")


def test_a_gzipped_parquet_file_that_unpacks_past_the_cap_is_refused_naming_it(tmp_path: Path, monkeypatch) -> None:
    plain = tmp_path / "plain.parquet"
    texts = [f"{n:04d}" * 250 for n in range(50)]
    pl.DataFrame({"text": texts, "label": ["a"] * 50}).write_parquet(plain, compression="uncompressed")
    drop = tmp_path / "drop"
    drop.mkdir()
    with gzip.open(drop / "t.parquet.gz", "wb") as packed:
        packed.write(plain.read_bytes())
    monkeypatch.setattr(parquet, "MAX_GUNZIPPED_PARQUET_BYTES", 10_000)
    with pytest.raises(IngestError, match=r"t\.parquet\.gz: gunzips past 10000 bytes"):
        read_drop(drop)


def test_a_json_array_element_with_invalid_bytes_is_quarantined_alone(tmp_path: Path) -> None:
    good = json.dumps({"text": "café ok", "label": "a"}, ensure_ascii=False).encode()  # UTF-8 by its é
    bad = b'{"text": "broken \xff byte", "label": "b"}'
    (tmp_path / "t.json").write_bytes(b"[" + good + b", " + bad + b", " + good + b"]")
    drop = read_drop(tmp_path)
    assert drop.documents["text"].to_list() == ["café ok", "café ok"]
    assert drop.quarantine.select("rule", "source_row").rows() == [("invalid_bytes", 2)]
    assert "\\xff" in drop.quarantine["record"][0]


def test_a_truncated_json_array_keeps_its_whole_elements_and_quarantines_the_cut_one(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text('[{"text": "one", "label": "a"}, {"text": "tw')
    drop = read_drop(tmp_path)
    assert drop.documents["text"].to_list() == ["one"]
    assert drop.quarantine.select("rule", "source_row").rows() == [("json_parse", 2)]
    assert "truncated" in drop.quarantine["reason"][0]


@pytest.mark.parametrize("name", ["_x", ".hidden", "sub/_deeper"])
def test_a_link_under_a_control_name_is_refused_and_never_copied(tmp_path: Path, name: str) -> None:
    from assets.readers.arrivals import RegistrationError, land_new_version
    from assets.storage.home import RefineryHome

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secrets.txt").write_text("root password\n")
    drop = tmp_path / "drop"
    (drop / "sub").mkdir(parents=True)
    (drop / "t.csv").write_text("text,label\nvpn down,a\n")
    (drop / name).symlink_to(outside)
    home = RefineryHome(tmp_path / "home").ensure()
    with pytest.raises(RegistrationError, match=rf"{Path(name).name}: a symbolic link -> "):
        land_new_version(home, drop, set())
    assert list(home.landing.iterdir()) == []


@pytest.mark.parametrize("dictionary", [True, False], ids=["dictionary-encoded", "plain"])
def test_a_small_parquet_file_of_huge_rows_quarantines_them_in_bounded_memory(
    tmp_path: Path, monkeypatch, dictionary: bool
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    huge = "x" * (20 << 20)  # 20 MiB a row, a few KB on disk
    table = pa.table({"text": ["fine ticket", *[huge] * 24, "last ticket"], "label": ["a"] * 26})
    pq.write_table(table, tmp_path / "t.parquet", use_dictionary=dictionary, compression="zstd")
    del table
    assert (tmp_path / "t.parquet").stat().st_size < 200_000
    if not dictionary:  # plainly encoded, the size shows in the metadata: a few rows a batch
        group = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
        assert parquet.rows_per_batch(group, 50_000) <= 4
    result = _measured_read(tmp_path)  # the default max_record_bytes: 16 MiB
    assert result["texts"] == ["fine ticket", "last ticket"]
    assert set(result["rules"]) == {"record_too_large"}
    assert result["rows"] == list(range(2, 26)) and result["longest_record"] <= 400
    # 24 rows of 20 MiB are 480 MiB as text: a dictionary holds the value once; a plain page is decompressed whole
    bound_mb = 300 if dictionary else (parquet.MAX_PAGE_BYTES >> 20) + 256
    assert result["peak_mb"] - result["imported_mb"] < bound_mb, result


def test_a_row_group_whose_page_is_past_the_page_limit_is_quarantined_row_by_row_undecoded(
    tmp_path: Path, monkeypatch
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    huge = "x" * (4 << 20)
    table = pa.table({"text": ["fine ticket", *[huge] * 20, "last ticket"], "label": ["a"] * 22})
    pq.write_table(table, tmp_path / "t.parquet", use_dictionary=False, row_group_size=11)
    monkeypatch.setattr(parquet, "MAX_PAGE_BYTES", 32 << 20)  # each group is one page of ten 4 MiB rows
    monkeypatch.setattr(parquet, "REJECT_BATCH", 4)
    drop = read_drop(tmp_path)
    assert drop.documents.height == 0
    assert drop.quarantine["source_row"].to_list() == list(range(1, 23))
    assert set(drop.quarantine["rule"]) == {"record_too_large"}
    assert "page of 4194" in drop.quarantine["reason"][0] and "column text" in drop.quarantine["reason"][0]


def test_a_dictionary_of_large_values_reaches_python_in_pieces_of_bounded_bytes(tmp_path: Path, monkeypatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(parquet, "BATCH_BYTES", 3 << 20)
    value = "y" * (1 << 20)  # 200 rows of one repeated 1 MiB value: a few hundred bytes on disk
    pq.write_table(pa.table({"text": [value] * 200, "label": ["a"] * 200}), tmp_path / "t.parquet")
    plain = pq.ParquetFile(tmp_path / "t.parquet", read_dictionary=["text", "label"])
    (batch,) = plain.iter_batches(batch_size=50_000)
    pieces = [
        piece for piece in parquet.bounded_records(batch, 1, "t.parquet", 16 << 20) if piece.columns["source_row"]
    ]
    assert all(sum(map(len, piece.columns["text"])) <= 3 << 20 for piece in pieces)
    assert sum(len(piece.columns["source_row"]) for piece in pieces) == 200 and len(pieces) >= 60
