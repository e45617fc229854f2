"""The evidence behind a classifier's answer: the training examples nearest to a text under the model's own vectors.

At export the train split's prepared (masked) texts are embedded by the model that was just trained (an encoder's
mean-pooled state, a TF-IDF model's features) and stored in the model folder with each row's provenance: doc_id,
label, dataset version, source file and row. A query is exact cosine search, a matrix product: a train split of
100k rows at 384 dimensions is 77 MB in float16 and answers in milliseconds, so no approximate library is needed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EVIDENCE_ROWS = "evidence_rows.parquet"
EVIDENCE_DENSE = "evidence_vectors.npy"
EVIDENCE_SPARSE = "evidence_vectors.npz"
PROVENANCE = ("doc_id", "label", "dataset_version", "source", "source_row", "text")
MAX_K = 50


def _unit(vectors):
    """Rows scaled to unit length (a zero row stays zero): dense as float32, sparse as CSR float32."""
    from scipy import sparse

    if sparse.issparse(vectors):
        matrix = sparse.csr_matrix(vectors, dtype=np.float32)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        return sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)).dot(matrix).tocsr()
    dense = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    return dense / np.where(norms > 0, norms, 1.0)


def write_evidence_index(folder: Path, rows: pa.Table, vectors) -> dict[str, object]:
    """Store the train rows' vectors and provenance in `folder`; what the card records of it."""
    from scipy import sparse

    matrix = _unit(vectors)
    if sparse.issparse(matrix):
        sparse.save_npz(folder / EVIDENCE_SPARSE, matrix)
        stored = folder / EVIDENCE_SPARSE
    else:
        np.save(folder / EVIDENCE_DENSE, matrix.astype(np.float16))  # half the bytes; cosine ranks barely move
        stored = folder / EVIDENCE_DENSE
    present = [column for column in PROVENANCE if column in rows.column_names]
    pq.write_table(rows.select(present), folder / EVIDENCE_ROWS)
    return {
        "rows": rows.num_rows,
        "dimensions": int(matrix.shape[1]),
        "vectors": "sparse" if sparse.issparse(matrix) else "float16",
        "bytes": stored.stat().st_size + (folder / EVIDENCE_ROWS).stat().st_size,
        "search": "exact cosine",
        "texts": "prepared (masked) texts of the train split",
    }


@dataclass
class EvidenceIndex:
    """A model folder's evidence: unit vectors of its train rows and their provenance."""

    vectors: object
    rows: list[dict]

    @classmethod
    def load(cls, folder: Path) -> EvidenceIndex | None:
        """The folder's index, or None for a model exported without one."""
        if not (folder / EVIDENCE_ROWS).is_file():
            return None
        if (folder / EVIDENCE_SPARSE).is_file():
            from scipy import sparse

            vectors = sparse.load_npz(folder / EVIDENCE_SPARSE)
        else:
            vectors = np.load(folder / EVIDENCE_DENSE, allow_pickle=False).astype(np.float32)
        return cls(vectors, pq.read_table(folder / EVIDENCE_ROWS).to_pylist())

    def nearest(self, queries, k: int) -> list[list[dict]]:
        """For each query vector, the `k` nearest train rows (cosine distance), nearest first."""
        k = max(0, min(int(k), MAX_K, len(self.rows)))
        if k == 0:
            return [[] for _ in range(queries.shape[0])]
        similarity = self.vectors.dot(_unit(queries).T)
        similarity = similarity.toarray() if hasattr(similarity, "toarray") else np.asarray(similarity, np.float32)
        found = []
        for column in similarity.T:
            best = np.argpartition(-column, k - 1)[:k]
            best = best[np.argsort(-column[best], kind="stable")]
            found.append([{**self.rows[i], "distance": round(float(1.0 - column[i]), 6)} for i in best])
        return found


def card_with_evidence(card_path: Path, evidence: dict[str, object]) -> None:
    """Record the index in the model card, replaced atomically."""
    card = json.loads(card_path.read_text())
    card["evidence"] = evidence
    staged = card_path.with_name(f".{card_path.name}.tmp")
    staged.write_text(json.dumps(card, indent=2, sort_keys=True))
    staged.replace(card_path)


def build_evidence_index(folder: Path, bundle: Path, classifier) -> dict[str, object]:
    """Embed the bundle's train split with the exported `classifier` and store its evidence index in `folder`."""
    started = time.perf_counter()
    rows = pq.read_table(bundle / "train.parquet")
    vectors = classifier.scorer.embeddings(rows.column("text").to_pylist())
    evidence = write_evidence_index(folder, rows, vectors)
    evidence["build_seconds"] = round(time.perf_counter() - started, 2)
    return evidence
