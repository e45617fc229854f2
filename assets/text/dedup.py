"""Duplicate removal: exact (case-folded text hash) and near (MinHash LSH over word 5-grams), within a
version and against every earlier version.

Shingle hashes are stable across processes and releases (blake2b of each distinct word, combined
with fixed arithmetic), so signatures stored for earlier versions stay comparable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from assets.storage.records import content_hash, quarantine_documents

_MIX = np.uint64(0x9E3779B97F4A7C15)
_PERMUTATION_SEED = 20261125  # fixed: signatures of earlier versions must stay comparable


@dataclass(frozen=True)
class NearDuplicateOptions:
    """MinHash LSH settings: shingles of `shingle_size` words, `bands` x `rows` permutations."""

    threshold: float = 0.8
    shingle_size: int = 5
    bands: int = 8
    rows: int = 4

    @property
    def permutations(self) -> int:
        return self.bands * self.rows


def text_keys(texts: pl.Series) -> pl.Series:
    """The exact-duplicate key of each cleaned text: a hash of its case-folded form."""
    return content_hash(texts.str.to_lowercase())


def _word_hashes(words: list[str]) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") for w in words], dtype=np.uint64
    )


def shingles(texts: pl.Series, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable 64-bit hashes of each text's word `size`-grams, and the row each belongs to (ascending).

    A text shorter than `size` words gives one shingle of all its words; an empty text gives none.
    Texts are cleaned, so words are separated by single spaces.
    """
    lowered = texts.fill_null("").str.to_lowercase()
    words = lowered.str.split(" ")
    lengths = np.where(lowered.to_numpy() == "", 0, words.list.len().to_numpy()).astype(np.int64)
    flat = words.explode()
    flat = flat.filter(flat != "")
    vocabulary = flat.unique()
    ids = flat.replace_strict(vocabulary, pl.Series(np.arange(len(vocabulary), dtype=np.int64))).to_numpy()
    h = _word_hashes(vocabulary.to_list())[ids] if len(ids) else np.zeros(0, np.uint64)
    starts = np.cumsum(lengths) - lengths
    with np.errstate(over="ignore"):
        # window[p] = h[p]*M^(size-1) + ... + h[p+size-1], for every p at once (wrapping uint64)
        window = np.zeros(len(h), dtype=np.uint64)
        padded = np.concatenate([h, np.zeros(size, np.uint64)])
        for j in range(size):
            window = window * _MIX + padded[j : j + len(h)]
        long_rows = np.flatnonzero(lengths >= size)
        counts = lengths[long_rows] - size + 1
        positions = np.repeat(starts[long_rows], counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        )
        long_hashes, long_owner = window[positions], np.repeat(long_rows, counts)
        short_rows = np.flatnonzero((lengths > 0) & (lengths < size))
        short_hashes = np.zeros(len(short_rows), dtype=np.uint64)
        for j in range(size - 1):
            inside = j < lengths[short_rows]
            take = padded[np.minimum(starts[short_rows] + j, len(h))]
            short_hashes = np.where(inside, short_hashes * _MIX + take, short_hashes)
    owner = np.concatenate([long_owner, short_rows])
    order = np.argsort(owner, kind="stable")
    return np.concatenate([long_hashes, short_hashes])[order], owner[order]


def minhash(shingle_hashes: np.ndarray, rows: np.ndarray, n_rows: int, permutations: int) -> np.ndarray:
    """MinHash signatures (n_rows x permutations, uint32) by multiply-shift hashing; rows without
    shingles get the all-max signature."""
    generator = np.random.default_rng(_PERMUTATION_SEED)
    a = generator.integers(1, 2**63, permutations, dtype=np.uint64) | np.uint64(1)
    b = generator.integers(0, 2**63, permutations, dtype=np.uint64)
    signature = np.full((n_rows, permutations), np.iinfo(np.uint32).max, dtype=np.uint32)
    if len(rows) == 0:
        return signature
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    present = rows[starts]
    with np.errstate(over="ignore"):
        for p in range(permutations):
            values = ((shingle_hashes * a[p] + b[p]) >> np.uint64(32)).astype(np.uint32)
            signature[present, p] = np.minimum.reduceat(values, starts)
    return signature


def band_keys(signature: np.ndarray, options: NearDuplicateOptions) -> np.ndarray:
    """One 64-bit key per (row, band): rows sharing any key are near-duplicate candidates."""
    keys = np.zeros((signature.shape[0], options.bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(options.bands):
            block = signature[:, band * options.rows : (band + 1) * options.rows].astype(np.uint64)
            key = np.full(signature.shape[0], np.uint64(band + 1), dtype=np.uint64)
            for column in range(options.rows):
                key = key * _MIX + block[:, column]
            keys[:, band] = key
    return keys


def exact_duplicates(
    documents: pl.DataFrame, stage: str, earlier: pl.DataFrame | None = None, column: str = "text"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the first document of each text key (of `column`); later copies, and copies of an earlier version's
    documents (`earlier`: text_key, doc_id), go to quarantine naming the doc_id they duplicate."""
    keyed = documents.with_columns(text_keys(documents[column]).alias("text_key"))
    if earlier is not None and earlier.height:
        previous = earlier.select("text_key", pl.col("doc_id").alias("__earlier")).unique("text_key", keep="first")
        keyed = keyed.join(previous, on="text_key", how="left", maintain_order="left")
    else:
        keyed = keyed.with_columns(pl.lit(None, pl.String).alias("__earlier"))
    keyed = keyed.with_columns(
        pl.col("doc_id").first().over("text_key").alias("__first"),
        pl.col("label").first().over("text_key").alias("__first_label"),
        pl.int_range(pl.len()).over("text_key").alias("__rank"),
    )
    is_copy = (pl.col("__rank") > 0) | pl.col("__earlier").is_not_null()
    copies = keyed.filter(is_copy)
    conflict = pl.col("label").ne_missing(pl.col("__first_label")) & pl.col("__earlier").is_null()
    quarantine = quarantine_documents(
        copies,
        stage,
        "duplicate",
        "exact duplicate of an earlier document",
        value=pl.when(pl.col("__earlier").is_not_null())
        .then(pl.lit("duplicates an earlier version"))
        .when(conflict)
        .then(pl.lit("conflicting label: ") + pl.col("__first_label").fill_null("null")),
        duplicate_of=pl.coalesce("__earlier", "__first"),
    )
    kept = keyed.filter(~is_copy).drop("__earlier", "__first", "__first_label", "__rank")
    return kept, quarantine


def _resolve(duplicate_of: np.ndarray) -> np.ndarray:
    """Follow chains a -> b -> c until every entry points at a document that is kept (-1: kept)."""
    target = duplicate_of.copy()
    for _ in range(64):
        following = np.where(target >= 0, duplicate_of[np.maximum(target, 0)], -1)
        step = (target >= 0) & (following >= 0)
        if not step.any():
            break
        target = np.where(step, following, target)
    return target


def _duplicates_within(buckets: pl.DataFrame, signature: np.ndarray, n: int, threshold: float) -> np.ndarray:
    """For each row, the row it near-duplicates within the version (-1: none), chains resolved to kept rows."""
    pairs = (
        buckets.with_columns(pl.col("row").min().over("band", "key").alias("first"))
        .filter(pl.col("row") != pl.col("first"))
        .select("row", "first")
        .unique()
    )
    duplicate_of = np.full(n, -1, dtype=np.int64)
    if pairs.height:
        left, right = pairs["row"].to_numpy(), pairs["first"].to_numpy()
        similar = (signature[left] == signature[right]).mean(axis=1) >= threshold
        candidates = (
            pl.DataFrame({"row": left[similar], "first": right[similar]}).group_by("row").agg(pl.col("first").min())
        )
        duplicate_of[candidates["row"].to_numpy()] = candidates["first"].to_numpy()
    return _resolve(duplicate_of)


def _mark_duplicates_of_earlier(
    of_doc: np.ndarray,
    buckets: pl.DataFrame,
    signature: np.ndarray,
    earlier: pl.DataFrame,
    options: NearDuplicateOptions,
) -> None:
    """Set `of_doc[row]` to the earlier version's doc_id a row near-duplicates (the smallest, when several)."""
    earlier_keys = earlier.select(
        "doc_id", pl.col("band_keys").alias("key"), pl.int_ranges(pl.col("band_keys").list.len()).alias("band")
    ).explode("key", "band")
    matches = buckets.join(earlier_keys, on=["band", "key"]).unique(["row", "doc_id"])
    if not matches.height:
        return
    matches = matches.join(earlier.select("doc_id", "signature"), on="doc_id")
    earlier_signature = matches["signature"].list.to_array(options.permutations).to_numpy().astype(np.uint32)
    match_rows = matches["row"].to_numpy()
    similar = (signature[match_rows] == earlier_signature).mean(axis=1) >= options.threshold
    first_match = pl.DataFrame({"row": match_rows[similar], "doc_id": matches["doc_id"].to_numpy()[similar]})
    first_match = first_match.group_by("row").agg(pl.col("doc_id").min())
    of_doc[first_match["row"].to_numpy()] = first_match["doc_id"].to_numpy()


def near_duplicates(
    documents: pl.DataFrame,
    stage: str,
    options: NearDuplicateOptions = NearDuplicateOptions(),
    earlier: pl.DataFrame | None = None,
    column: str = "text",
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Quarantine documents whose estimated word-shingle Jaccard with an earlier document reaches the threshold.

    Candidates share an LSH band with the first document of that band bucket (or with an earlier
    version's document, from `earlier`: doc_id, band_keys, signature); a candidate is a duplicate when
    the fraction of equal MinHash values reaches the threshold. Returns (kept, quarantine, the index
    rows of the kept documents for later versions).
    """
    n = documents.height
    shingle_hashes, rows = shingles(documents[column], options.shingle_size)
    signature = minhash(shingle_hashes, rows, n, options.permutations)
    keys = band_keys(signature, options)
    has_shingles = np.zeros(n, dtype=bool)
    has_shingles[rows] = True
    buckets = pl.DataFrame(
        {
            "row": np.repeat(np.arange(n, dtype=np.int64), options.bands),
            "band": np.tile(np.arange(options.bands, dtype=np.int64), n),
            "key": keys.reshape(-1).view(np.int64),
        }
    ).filter(pl.Series(np.repeat(has_shingles, options.bands)))
    duplicate_of = _duplicates_within(buckets, signature, n, options.threshold)
    doc_ids = documents["doc_id"].to_numpy()
    of_doc = np.where(duplicate_of >= 0, doc_ids[np.maximum(duplicate_of, 0)], None)
    if earlier is not None and earlier.height:
        _mark_duplicates_of_earlier(of_doc, buckets, signature, earlier, options)
    marked = documents.with_columns(pl.Series("__of", of_doc.tolist(), dtype=pl.String))
    quarantine = quarantine_documents(
        marked.filter(pl.col("__of").is_not_null()),
        stage,
        "near_duplicate",
        f"word {options.shingle_size}-gram MinHash Jaccard >= {options.threshold} with an earlier document",
        duplicate_of=pl.col("__of"),
    )
    kept_mask = marked["__of"].is_null().to_numpy()
    indexed = kept_mask & has_shingles  # Delta has no unsigned types: keys keep their bits as int64
    index = pl.DataFrame(
        {
            "doc_id": doc_ids[indexed],
            "band_keys": keys[indexed].view(np.int64),
            "signature": signature[indexed].astype(np.int64),
        },
        schema={"doc_id": pl.String, "band_keys": pl.List(pl.Int64), "signature": pl.List(pl.Int64)},
    )
    return marked.filter(pl.col("__of").is_null()).drop("__of"), quarantine, index
