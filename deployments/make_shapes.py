"""Make the multimodal example: small generated images (circles and squares) with a label.

Writes ``data/shapes/images/shape_NNN.png`` (24x24 grayscale PNG, written with zlib and
struct: no imaging library needed) and ``data/shapes/shapes.csv`` (image, brightness,
label: 1 for a square, 0 for a circle), deterministically for the seed, so the committed
files are exactly what this script makes (a test checks it).

    python deployments/make_shapes.py
"""

from __future__ import annotations

import csv
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

SIZE = 24
COUNT = 240
HERE = Path(__file__).resolve().parent / "data" / "shapes"


def png(pixels: np.ndarray) -> bytes:
    """The bytes of a grayscale 8-bit PNG of ``pixels`` (height x width, uint8)."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels.astype(np.uint8))  # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def shape(rng: np.random.Generator, square: bool) -> tuple[np.ndarray, float]:
    """One noisy image of a square or a circle at a random place and size; and its mean brightness."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    radius = rng.uniform(4, 8)
    cy, cx = rng.uniform(radius, SIZE - radius, size=2)
    inside = (np.maximum(abs(y - cy), abs(x - cx)) <= radius) if square else ((y - cy) ** 2 + (x - cx) ** 2 <= radius**2)
    image = np.where(inside, 200.0, 30.0) + rng.normal(0, 12, size=(SIZE, SIZE))
    pixels = np.clip(image, 0, 255).astype(np.uint8)
    return pixels, float(pixels.mean())


def make(folder: Path = HERE, count: int = COUNT, seed: int = 7) -> Path:
    """Write the images and the table under ``folder``; returns the table's path."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        square = bool(rng.random() < 0.5)
        pixels, brightness = shape(rng, square)
        name = f"images/shape_{i:03d}.png"
        (folder / name).write_bytes(png(pixels))
        rows.append([name, f"{brightness:.2f}", int(square)])
    table = folder / "shapes.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image", "brightness", "label"])
        writer.writerows(rows)
    return table


if __name__ == "__main__":
    print(make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
