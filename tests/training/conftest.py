"""Fixtures for the training tests: a small labelled dataset of ellipses on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from train_helpers import tiny_config


def make_blobs(n_images: int, size: int, rng: np.random.Generator, *, n_objects=(6, 12),
               radius=(8, 16)) -> list[tuple[np.ndarray, np.ndarray]]:
    """Bright non-overlapping ellipses on a dark, noisy, high-offset background (+ labels)."""
    out = []
    yy, xx = np.mgrid[:size, :size]
    for _ in range(n_images):
        labels = np.zeros((size, size), np.uint16)
        image = np.zeros((size, size), np.float32)
        for i in range(1, int(rng.integers(*n_objects)) + 1):
            for _try in range(30):
                cy, cx = rng.uniform(radius[1], size - radius[1], 2)
                ry, rx = rng.uniform(*radius, 2)
                th = rng.uniform(0, np.pi)
                dy, dx = yy - cy, xx - cx
                u = (dy * np.cos(th) + dx * np.sin(th)) / ry
                v = (-dy * np.sin(th) + dx * np.cos(th)) / rx
                m = u * u + v * v <= 1
                if not labels[m].any():
                    labels[m] = i
                    image[m] = rng.uniform(0.5, 1.0)
                    break
        image += rng.normal(0, 0.1, image.shape).astype(np.float32)
        out.append(((image * 1000 + 33000).astype(np.uint16), labels))
    return out


def write_blobs(folder: Path, n: int, size: int, seed: int) -> Path:
    import tifffile

    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for i, (img, lab) in enumerate(make_blobs(n, size, np.random.default_rng(seed))):
        tifffile.imwrite(folder / "images" / f"img{i:02d}.tif", img)
        tifffile.imwrite(folder / "labels" / f"img{i:02d}.tif", lab)
    return folder


@pytest.fixture(scope="session")
def blob_dir(tmp_path_factory) -> Path:
    """``images/`` and ``labels/`` with eight 256² samples."""
    return write_blobs(tmp_path_factory.mktemp("blobs"), 8, 256, seed=0)


@pytest.fixture()
def tiny(blob_dir, tmp_path):
    """``tiny(**sections)`` → a TrainConfig on the blob data writing under ``tmp_path``."""

    def make(**sections):
        return tiny_config(blob_dir, tmp_path / "run", **sections)

    return make
