"""End to end in one process: equal to a whole-image run, resumable, settings checked."""

from dataclasses import dataclass, field

import numpy as np
import pytest
import tifffile
import zarr
from scipy import ndimage as ndi

from samscope.blockwise import BlockwiseRequest, ThresholdSegmenter, segment_blockwise
from samscope.errors import InputError


def _image(shape, n, seed, rmax=10.0):
    rng = np.random.default_rng(seed)
    grids = np.indices(shape)
    img = np.zeros(shape, np.uint16)
    for _ in range(n):
        centre, r = rng.uniform(0, shape), rng.uniform(3, rmax)
        img[sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) < r * r] = 1000
    return img


def _same_partition(a, b):
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


def _labels(path):
    return zarr.open_group(str(path), mode="r")["0"][...]


@dataclass(frozen=True)
class Counting(ThresholdSegmenter):
    """Threshold segmenter that counts its blocks and can stop the run after ``stop_after``."""

    calls: list = field(default_factory=list, compare=False)
    stop_after: int | None = None

    def segment(self, block, axes):
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt
        self.calls.append(block.shape)
        return super().segment(block, axes)


@pytest.fixture
def image_2d(tmp_path):
    img = _image((300, 340), 120, seed=0)
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, img, tile=(64, 64))  # tiled TIFF, read tile by tile
    return path, img


def test_blockwise_equals_whole_image_and_table_matches(image_2d, tmp_path):
    path, img = image_2d
    out = tmp_path / "out.zarr"
    result = segment_blockwise(BlockwiseRequest(path, out, block_size=64, halo=24),
                               segmenter=ThresholdSegmenter(500))
    labels = _labels(out)
    whole, n = ndi.label(img > 500)
    assert result.status == "done" and result.n_blocks == 30 and result.n_objects == n
    assert _same_partition(whole, labels)
    assert np.unique(labels).tolist() == list(range(n + 1))
    assert not (out / "_blockwise" / "local").exists()  # scratch removed when complete
    import csv

    rows = list(csv.DictReader(open(result.table)))
    assert len(rows) == n
    areas = np.bincount(labels.ravel())
    cy = ndi.center_of_mass(np.ones_like(labels), labels, range(1, n + 1))
    for row in rows[:: max(1, n // 20)]:
        i = int(row["id"])
        assert int(row["area"]) == areas[i]
        assert float(row["centroid_y"]) == pytest.approx(cy[i - 1][0])
        ys, xs = np.nonzero(labels == i)
        assert (int(row["bbox_y0"]), int(row["bbox_x1"])) == (ys.min(), xs.max() + 1)
    from samscope.io import read_labels

    assert read_labels(out).shape == img.shape  # readable as OME-Zarr labels


def test_3d_volume_from_zarr(tmp_path):
    vol = _image((20, 80, 90), 50, seed=1, rmax=6)
    src = tmp_path / "vol.zarr"
    arr = zarr.create_array(str(src), shape=vol.shape, dtype=vol.dtype, chunks=(4, 32, 32),
                            zarr_format=2)
    arr[...] = vol
    out = tmp_path / "out.zarr"
    result = segment_blockwise(BlockwiseRequest(src, out, axes="ZYX", block_size=(8, 32, 32),
                                                halo=(4, 12, 12)),
                               segmenter=ThresholdSegmenter(500))
    whole, n = ndi.label(vol > 500)
    assert result.n_blocks == 27 and result.n_objects == n
    assert _same_partition(whole, _labels(out))
    attrs = dict(zarr.open_group(str(out), mode="r").attrs)
    assert [a["name"] for a in attrs["multiscales"][0]["axes"]] == ["z", "y", "x"]


def test_interrupted_run_resumes_without_redoing_finished_blocks(image_2d, tmp_path):
    path, _ = image_2d
    out = tmp_path / "out.zarr"
    request = BlockwiseRequest(path, out, block_size=64, halo=24)
    first = Counting(500, stop_after=9)
    with pytest.raises(KeyboardInterrupt):
        segment_blockwise(request, segmenter=first)
    assert len(list((out / "_blockwise" / "segmented").glob("*.json"))) == 9
    assert "0" not in zarr.open_group(str(out), mode="r")  # nothing a reader takes as done
    second = Counting(500)
    resumed = segment_blockwise(request, segmenter=second)
    assert len(second.calls) == 30 - 9 and resumed.blocks_run == 21
    reference = tmp_path / "ref.zarr"
    segment_blockwise(BlockwiseRequest(path, reference, block_size=64, halo=24),
                      segmenter=ThresholdSegmenter(500))
    assert np.array_equal(_labels(out), _labels(reference))  # the same ids, not just objects
    again = Counting(500)
    assert segment_blockwise(request, segmenter=again).status == "skipped" and not again.calls


def test_interrupted_while_writing_resumes(image_2d, tmp_path, monkeypatch):
    path, _ = image_2d
    out = tmp_path / "out.zarr"
    request = BlockwiseRequest(path, out, block_size=64, halo=24)
    from samscope.blockwise import tasks

    real, count = tasks.write_task, []

    def failing(job, flat, lookup):
        if len(count) == 5:
            raise KeyboardInterrupt
        count.append(flat)
        return real(job, flat, lookup)

    monkeypatch.setattr("samscope.blockwise.run.write_task", failing)
    with pytest.raises(KeyboardInterrupt):
        segment_blockwise(request, segmenter=ThresholdSegmenter(500))
    assert not zarr.open_group(str(out), mode="r").attrs["samscope_blockwise"]["complete"]
    monkeypatch.undo()
    seg = Counting(500)
    segment_blockwise(request, segmenter=seg)
    assert not seg.calls  # every block was segmented already
    whole, n = ndi.label(image_2d[1] > 500)
    assert _same_partition(whole, _labels(out))


def test_other_settings_are_refused_and_nothing_else_is_touched(image_2d, tmp_path):
    path, _ = image_2d
    out = tmp_path / "out.zarr"
    segment_blockwise(BlockwiseRequest(path, out, block_size=64, halo=24),
                      segmenter=ThresholdSegmenter(500))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(InputError, match=r"other settings \(grid.halo"):
        segment_blockwise(BlockwiseRequest(path, out, block_size=64, halo=16),
                          segmenter=ThresholdSegmenter(500))
    with pytest.raises(InputError, match="segmenter.threshold"):
        segment_blockwise(BlockwiseRequest(path, out, block_size=64, halo=24),
                          segmenter=ThresholdSegmenter(400))
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    redo = segment_blockwise(BlockwiseRequest(path, out, block_size=64, halo=16, overwrite=True),
                             segmenter=ThresholdSegmenter(500))
    assert redo.status == "done" and redo.halo == (16, 16)


def test_bad_inputs(image_2d, tmp_path):
    path, _ = image_2d
    seg = ThresholdSegmenter(500)
    foreign = tmp_path / "foreign.zarr"
    zarr.save_array(str(foreign), np.zeros((4, 4)), zarr_format=2)
    cases = [
        (BlockwiseRequest(path, tmp_path / "o.zarr", block_size=512), "larger than the image"),
        (BlockwiseRequest(path, tmp_path / "o.zarr", block_size=64, halo=40), "more than half"),
        (BlockwiseRequest(path, tmp_path / "o.tif", block_size=64), "is a .zarr folder"),
        (BlockwiseRequest(path, foreign, block_size=64), "not a samscope blockwise output"),
        (BlockwiseRequest(tmp_path / "missing.tif", tmp_path / "o.zarr"), "missing.tif"),
    ]
    for request, words in cases:
        with pytest.raises(InputError, match=words):
            segment_blockwise(request, segmenter=seg)
    assert not (tmp_path / "o.zarr").exists()
    assert zarr.open_array(str(foreign), mode="r").shape == (4, 4)


def test_output_inside_an_input_store_is_refused(tmp_path):
    src = tmp_path / "img.zarr"
    zarr.save_array(str(src), _image((64, 64), 5, seed=2), zarr_format=2)
    with pytest.raises(InputError, match="would overwrite the input"):
        segment_blockwise(BlockwiseRequest(src, src / "labels.zarr", block_size=32, halo=8),
                          segmenter=ThresholdSegmenter(500))


def test_chunked_accuracy_equals_the_whole_image_metric(tmp_path):
    from samscope.blockwise.evaluate import chunked_accuracy
    from samscope.evaluation.metrics import segmentation_accuracy

    gt, _ = ndi.label(_image((150, 170), 60, seed=4) > 0)
    rng = np.random.default_rng(5)
    pred = np.where(rng.random(gt.shape) < 0.97, gt, 0) * 3
    pred[:, 80:] += (pred[:, 80:] > 0) * 1000  # objects cut in two at x = 80
    stored = zarr.create_array(str(tmp_path / "p.zarr"), shape=pred.shape, dtype=np.int64,
                               chunks=(64, 64), zarr_format=2)
    stored[...] = pred
    chunked = chunked_accuracy(gt, stored)
    whole = segmentation_accuracy(gt, pred)
    assert np.array_equal(chunked.accuracy, whole.accuracy) and 0 < chunked.msa < 1
