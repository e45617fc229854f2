"""Profiling a sample: read however the file parses (fast or careful path), columns detected."""

from __future__ import annotations

from pathlib import Path

from assets.datasets.profile import profile_frame, read_sample


def test_a_clean_and_a_messy_csv_are_both_sampled_with_their_own_column_names(tmp_path: Path) -> None:
    rows = "".join(f"R{n},please help with order {n} today,{['refund', 'shipping'][n % 2]}\n" for n in range(60))
    (tmp_path / "clean.csv").write_text("ref,customer message,disposition\n" + rows)
    (tmp_path / "messy.csv").write_text("ref,customer message,disposition\n" + rows + "broken,line\n")
    for name in ("clean.csv", "messy.csv"):
        sample = read_sample(tmp_path / name)
        assert sample.columns == ["ref", "customer message", "disposition"] and sample.height == 60
        profile = profile_frame(sample)
        assert profile.text_column == "customer message" and "disposition" in profile.label_columns
