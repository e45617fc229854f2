"""Duplicates: exact and near, within a version and against earlier versions, each naming its original."""

import polars as pl

from assets.text.dedup import NearDuplicateOptions, exact_duplicates, near_duplicates, shingles


def _documents(texts: list[str], prefix: str = "d", labels: list[str] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "doc_id": [f"{prefix}{i}" for i in range(len(texts))],
            "text": texts,
            "label": labels or ["vpn"] * len(texts),
            "source": ["f.csv"] * len(texts),
            "source_row": list(range(2, len(texts) + 2)),
        }
    )


BASE = "the vpn client disconnects every ten minutes when I work from the Lyon office since the Monday update"


def test_later_exact_duplicates_are_quarantined_with_the_doc_id_they_duplicate() -> None:
    documents = _documents(["VPN down", "printer jam", "vpn DOWN", "vpn down"], labels=["vpn", "printer", "vpn", "net"])
    kept, quarantine = exact_duplicates(documents, "clean")
    assert kept["doc_id"].to_list() == ["d0", "d1"]
    assert quarantine.select("doc_id", "duplicate_of", "rule", "value").rows() == [
        ("d2", "d0", "duplicate", None),
        ("d3", "d0", "duplicate", "conflicting label: vpn"),
    ]


def test_exact_duplicates_of_an_earlier_version_name_the_earlier_document() -> None:
    first, _ = exact_duplicates(_documents(["VPN down", "printer jam"], "a"), "clean")
    kept, quarantine = exact_duplicates(_documents(["vpn down", "new issue"], "b"), "clean", first)
    assert kept["doc_id"].to_list() == ["b1"]
    assert quarantine.select("doc_id", "duplicate_of", "value").rows() == [
        ("b0", "a0", "duplicates an earlier version")
    ]


def test_near_duplicates_within_a_version_are_found_and_distinct_texts_kept() -> None:
    texts = [
        BASE,
        "Hello, " + BASE + " Thanks.",  # greeting and closing added: near duplicate
        BASE.replace("Lyon", "Berlin"),  # one word changed: near duplicate
        "please install Tableau on my workstation, I have approval from my manager for the project",
        "the printer on floor three prints blank pages since the toner was replaced last week",
    ]
    kept, quarantine, index = near_duplicates(_documents(texts), "clean", NearDuplicateOptions(threshold=0.6))
    assert kept["doc_id"].to_list() == ["d0", "d3", "d4"]
    assert sorted(quarantine.select("doc_id", "duplicate_of", "rule").rows()) == [
        ("d1", "d0", "near_duplicate"),
        ("d2", "d0", "near_duplicate"),
    ]
    assert index["doc_id"].to_list() == ["d0", "d3", "d4"]


def test_near_duplicates_of_an_earlier_version_are_found_through_its_index() -> None:
    _, _, earlier = near_duplicates(_documents([BASE, "something entirely different about invoices"], "a"), "clean")
    later = _documents(["Hi team, " + BASE, "a brand new problem with the scanner on floor two"], "b")
    kept, quarantine, _ = near_duplicates(later, "clean", NearDuplicateOptions(threshold=0.6), earlier)
    assert kept["doc_id"].to_list() == ["b1"]
    assert quarantine.select("doc_id", "duplicate_of").rows() == [("b0", "a0")]


def test_shingle_hashes_are_stable_across_processes_and_releases() -> None:
    hashes, rows = shingles(pl.Series(["The quick brown fox jumps over", "", "two words"]), 5)
    assert rows.tolist() == [0, 0, 2]
    assert hashes.tolist() == [8189267298377266199, 2247479744533809214, 83514233802744674]
