"""What the CLI writes to files: predictions a spreadsheet opens without running any cell as a formula."""

import csv
from pathlib import Path

from dagster_project.cli.models import write_predictions


def test_prediction_cells_that_a_spreadsheet_would_run_are_written_as_text(tmp_path: Path) -> None:
    texts = ['=HYPERLINK("http://127.0.0.1/x","y")', "+1 555 0100", "-2+3", "@SUM(A1)", "\tcmd", "plain text"]
    rows = [{"text": text, "label": "=cmd|' /C calc'!A0", "score": 0.91} for text in texts]
    output = tmp_path / "out.csv"
    write_predictions(rows, str(output))
    with output.open(newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert [row["text"] for row in written] == [f"'{text}" for text in texts[:5]] + ["plain text"]
    assert {row["label"] for row in written} == {"'=cmd|' /C calc'!A0"} and written[0]["score"] == "0.91"
    jsonl = tmp_path / "out.jsonl"
    write_predictions(rows, str(jsonl))
    assert '"text": "=HYPERLINK' in jsonl.read_text()  # JSON Lines keep the values exactly
