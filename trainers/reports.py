"""Evaluation reports for people: markdown tables and the confusion-matrix picture."""

from __future__ import annotations


def per_class_markdown(per_class: dict[str, dict[str, float]]) -> str:
    """The per-class table as markdown."""
    lines = ["| label | precision | recall | f1 | support |", "|---|---|---|---|---|"]
    for label, row in per_class.items():
        lines.append(f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    return "\n".join(lines)


def confusion_markdown(labels: list[str], matrix: list[list[int]]) -> str:
    """The confusion matrix as a markdown table (rows: true label, columns: predicted)."""
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for label, row in zip(labels, matrix, strict=True):
        lines.append(f"| **{label}** | " + " | ".join(str(n) for n in row) + " |")
    return "\n".join(lines)


def confusion_png(matrix: list[list[int]], cell: int = 24) -> bytes:
    """A heatmap of the row-normalised confusion matrix as PNG bytes (white = 0, dark blue = the whole row)."""
    import struct
    import zlib

    size = len(matrix)
    rows = []
    for true_id in range(size * cell):
        row = matrix[true_id // cell]
        total = sum(row) or 1
        line = bytearray([0])  # PNG filter type 0 for this scanline
        for x in range(size * cell):
            share = row[x // cell] / total
            edge = x % cell == 0 or true_id % cell == 0
            red, green, blue = (200, 200, 200) if edge else (int(255 - 230 * share), int(255 - 180 * share), 255)
            line += bytes((red, green, blue))
        rows.append(bytes(line))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size * cell, size * cell, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
