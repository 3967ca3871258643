"""Datasets on disk (layout, resume, formats), streams for training, preview grids."""

import json
from itertools import islice

import numpy as np
import pytest
import tifffile

import samscope.simulate.dataset as ds
from samscope.errors import InputError
from samscope.simulate import mitochondria, nuclei, read_sample, stream, write_dataset

SMALL = (64, 64)


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_layout_and_round_trip(tmp_path):
    out = write_dataset("nuclei", 3, tmp_path / "d", seed=4, shape=SMALL, progress=False)
    assert _files(out) == [
        "dataset.json",
        *[f"{sub}/{i:06d}.{ext}" for sub, ext in (("images", "tif"), ("labels", "tif"), ("params", "json")) for i in range(3)],
    ]
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["kind"] == "nuclei" and meta["seed"] == 4 and meta["n"] == 3 and meta["complete"]
    assert meta["config"]["diameter_px"] == [22.0, 33.0]
    for i, s in enumerate(nuclei(3, SMALL, rng=4)):
        r = read_sample(out, i)
        assert np.array_equal(r.image, s.image) and r.image.dtype == np.float32
        assert np.array_equal(r.labels, s.labels) and r.labels.dtype == np.uint16
        assert r.params == json.loads(json.dumps(s.params))
        assert r.masks is None


def test_mitochondria_masks_on_disk(tmp_path):
    out = write_dataset("mitochondria", 1, tmp_path, seed=2, shape=(128, 128), progress=False)
    s = mitochondria(1, (128, 128), rng=2)[0]
    m = tifffile.imread(out / "masks" / "000000.tif")
    assert m.dtype == np.uint8 and m.shape == s.masks.shape
    assert np.array_equal(m.astype(bool), s.masks)
    assert np.array_equal(read_sample(out, 0).masks, s.masks)


def test_zarr_images(tmp_path):
    out = write_dataset("cells", 2, tmp_path / "z", seed=1, shape=SMALL, fmt="zarr", progress=False)
    assert (out / "images.zarr").is_dir() and not (out / "images").exists()
    s = next(stream("cells", seed=1, shape=SMALL, start=1))
    assert np.array_equal(read_sample(out, 1).image, s.image)


def test_resume_after_interruption_gives_the_same_dataset(tmp_path, monkeypatch):
    ref = write_dataset("nuclei", 5, tmp_path / "ref", seed=8, shape=SMALL, progress=False)

    real = ds._write_sample
    calls = []

    def flaky(out, i, sample, fmt):
        calls.append(i)
        if len(calls) == 3:
            # die half-way through a sample: its image is written, its label file is not
            real.__globals__["_atomic_write_tiff"](
                out / "images" / f"{i:06d}.tif", sample.image
            )
            (out / "images" / f".{i:06d}.tif.dead.tmp").write_bytes(b"partial")
            raise KeyboardInterrupt
        real(out, i, sample, fmt)

    monkeypatch.setattr(ds, "_write_sample", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_dataset("nuclei", 5, tmp_path / "run", seed=8, shape=SMALL, progress=False)
    run = tmp_path / "run"
    assert not json.loads((run / "dataset.json").read_text())["complete"]
    assert not (run / "labels" / "000002.tif").exists()

    done = []
    monkeypatch.setattr(ds, "_write_sample", lambda out, i, s, f: (done.append(i), real(out, i, s, f)))
    write_dataset("nuclei", 5, run, seed=8, shape=SMALL, progress=False)
    assert done == [2, 3, 4]  # complete samples are skipped, the partial one is redone
    assert _files(run) == _files(ref)  # the stale temporary file is gone
    for name in _files(ref):
        if name.endswith(".tif"):
            assert np.array_equal(tifffile.imread(run / name), tifffile.imread(ref / name)), name
    assert json.loads((run / "dataset.json").read_text())["complete"]


def test_extend_a_dataset(tmp_path):
    write_dataset("nuclei", 2, tmp_path, seed=3, shape=SMALL, progress=False)
    write_dataset("nuclei", 4, tmp_path, seed=3, shape=SMALL, progress=False)
    assert json.loads((tmp_path / "dataset.json").read_text())["n"] == 4
    assert np.array_equal(read_sample(tmp_path, 3).image, nuclei(4, SMALL, rng=3)[3].image)


def test_a_different_run_is_refused_unless_overwrite(tmp_path):
    write_dataset("nuclei", 2, tmp_path, seed=3, shape=SMALL, progress=False)
    with pytest.raises(InputError, match="different dataset"):
        write_dataset("nuclei", 2, tmp_path, seed=4, shape=SMALL, progress=False)
    with pytest.raises(InputError, match="different dataset"):
        write_dataset("nuclei", 2, tmp_path, seed=3, shape=SMALL, config=ds.config_for("nuclei", density=(2, 2)), progress=False)
    write_dataset("cells", 1, tmp_path, seed=4, shape=SMALL, progress=False, overwrite=True)
    meta = json.loads((tmp_path / "dataset.json").read_text())
    assert meta["kind"] == "cells" and not (tmp_path / "labels" / "000001.tif").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        write_dataset("nuclei", 1, other, seed=0, shape=SMALL, progress=False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"n": -3},
        {"seed": -1},
        {"seed": 1.5},
        {"fmt": "png"},
        {"workers": 0},
        {"shape": (8, 8)},
        {"preview": "grid.jpg"},
        {"kind": "neurons"},
    ],
)
def test_bad_arguments_write_nothing(tmp_path, kwargs):
    args = {"kind": "nuclei", "n": 2, "seed": 0, "shape": SMALL, "progress": False, **kwargs}
    kind, n = args.pop("kind"), args.pop("n")
    with pytest.raises(InputError):
        write_dataset(kind, n, tmp_path / "never", **args)
    assert not (tmp_path / "never").exists()


def test_workers_do_not_change_the_files(tmp_path):
    a = write_dataset("nuclei", 4, tmp_path / "a", seed=6, shape=SMALL, progress=False)
    b = write_dataset("nuclei", 4, tmp_path / "b", seed=6, shape=SMALL, progress=False, workers=2)
    assert _files(a) == _files(b)
    for name in _files(a):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_stream_is_endless_indexed_and_worker_safe():
    seq = [s.image for s in islice(stream("nuclei", seed=5, shape=SMALL), 6)]
    # two data-loader workers splitting by index see the same samples
    w0 = [s.image for s in islice(stream("nuclei", seed=5, shape=SMALL, start=0, step=2), 3)]
    w1 = [s.image for s in islice(stream("nuclei", seed=5, shape=SMALL, start=1, step=2), 3)]
    for k in range(3):
        assert np.array_equal(w0[k], seq[2 * k]) and np.array_equal(w1[k], seq[2 * k + 1])
    assert not np.array_equal(seq[0], seq[1])
    with pytest.raises(InputError):
        stream("nuclei", seed=5, step=0)
    with pytest.raises(InputError):
        stream("mitochondria", seed=-1)


def test_preview_png(tmp_path):
    png = tmp_path / "p.png"
    write_dataset("mitochondria", 2, tmp_path / "m", seed=0, shape=(128, 128), preview=png, progress=False)
    from PIL import Image

    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape[0] > 200 and img.shape[1] > 400
    # outlines are saturated colours, not grey
    assert (img.max(axis=2) - img.min(axis=2) > 150).sum() > 100


def test_an_image_without_objects_round_trips(tmp_path):
    cfg = ds.config_for("mitochondria", n_per_crop=(1, 1))
    [s] = mitochondria(1, (64, 64), rng=0, config=cfg)
    assert s.n_objects == 0 and not s.foreground.any()  # its one object fell outside the field
    write_dataset("mitochondria", 1, tmp_path, seed=0, shape=(64, 64), config=cfg, progress=False)
    r = read_sample(tmp_path, 0)
    assert r.masks.shape == (0, 64, 64) and not r.labels.any()
