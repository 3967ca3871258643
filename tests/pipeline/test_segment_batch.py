"""segment_batch: the library batch run behind ``samscope segment`` (one call, typed results)."""

import csv
import json
import threading

import numpy as np
import pytest
import tifffile

from samscope.errors import InputError
from samscope.pipeline import SegmentRequest, segment_batch

SETTINGS = {"foreground_thresh": "0", "min_size": 0}


@pytest.fixture(scope="module")
def model():
    from samscope.models.registry import load_model

    return load_model("vit_test", device="cpu")


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "images"
    (d / "sub").mkdir(parents=True)
    tifffile.imwrite(d / "a.tif", (rng.random((70, 60)) * 4000).astype(np.uint16),
                     resolution=(1e4 / 0.25, 1e4 / 0.25), resolutionunit="CENTIMETER")  # fmt: skip
    tifffile.imwrite(d / "sub" / "b.tif", (rng.random((50, 64)) * 4000).astype(np.uint16))
    return d


def test_one_call_writes_everything_with_records_progress_and_pixel_size(model, folder, tmp_path):
    out = tmp_path / "out"
    events = []
    result = segment_batch(
        SegmentRequest([str(folder / "**" / "*.tif")], output=out, model=model, mode="apg",
                       settings=SETTINGS),  # fmt: skip
        progress=events.append,
    )
    assert not result.cancelled and len(result.done) == 2 and result.method.endswith("(apg)")
    a = result.records[0]
    assert a.outputs.labels == out / "a_labels.tif"
    assert result.records[1].outputs.labels == out / "sub" / "b_labels.tif"  # folder kept
    assert {p.name for p in a.written} >= {"a_labels.tif", "a_objects.csv", "a_segmentation.json"}
    assert a.pixel_size_nm == pytest.approx(250.0)
    with tifffile.TiffFile(out / "a_labels.tif") as tif:  # the labels carry the pixel size
        assert tif.pages[0].tags["XResolution"].value[0] > 0
        assert tif.asarray().shape == (70, 60)
    record = json.loads((out / "a_segmentation.json").read_text())
    assert record["mode"] == "apg" and record["pixel_size_nm"] == pytest.approx(250.0)
    assert record["settings"]["min_size"] == 0 and "diameter_px" in record
    with open(out / "a_objects.csv") as f:
        assert len(list(csv.DictReader(f))) == a.n_objects
    stages = [e.stage for e in events]
    assert stages[0] == "start" and stages.count("done") == 2 and stages.count("image") == 2
    # a second call resumes: nothing to do
    again = segment_batch(SegmentRequest([folder], output=out, model=model, mode="apg"))
    assert len(again.skipped) == 1 and len(again.done) == 0  # only a.tif is directly in folder


def test_cancellation_stops_between_images_and_writes_no_partial_image(model, folder, tmp_path):
    flag = threading.Event()
    out = tmp_path / "out"

    def on_event(event):
        if event.stage == "done":
            flag.set()  # cancel after the first image

    result = segment_batch(
        SegmentRequest([folder / "a.tif", folder / "sub" / "b.tif"], output=out, model=model,
                       mode="apg", settings=SETTINGS),  # fmt: skip
        progress=on_event,
        cancel=flag,
    )
    assert result.cancelled and len(result.done) == 1
    assert (out / "a_objects.csv").exists() and not list(out.glob("b_*"))


def test_nothing_is_created_or_loaded_when_a_check_fails(folder, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(InputError, match="would both write"):
        segment_batch(SegmentRequest([folder / "a.tif", _copy(folder / "a.tif", tmp_path / "x")],
                                     output=out, model="no-such-model"))  # fmt: skip
    assert not out.exists()
    with pytest.raises(InputError, match="no pixel size"):
        segment_batch(SegmentRequest([folder / "sub" / "b.tif"], output=out,
                                     model="no-such-model", diameter_um=10))  # fmt: skip
    assert not out.exists()
    with pytest.raises(InputError, match="not both"):
        SegmentRequest([folder], diameter=3, diameter_um=1)


def _copy(src, folder):
    folder.mkdir()
    (folder / src.name).write_bytes(src.read_bytes())
    return folder / src.name


def test_diameter_is_passed_through_printed_and_stored(model, folder, tmp_path, monkeypatch):
    """--diameter-um becomes pixels with the file's pixel size and reaches segment(diameter=)."""
    import samscope.instance.segment as seg

    real, seen = seg.segment, []

    def scale_aware(image, model, *, diameter=None, **kwargs):
        seen.append(diameter)
        result = real(image, model, **kwargs)
        object.__setattr__(result, "diameter", diameter)
        object.__setattr__(result, "scale", 0.5)
        return result

    monkeypatch.setattr(seg, "segment", scale_aware)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="works at one scale"):  # vit_test is not scale-aware
        segment_batch(SegmentRequest([folder / "a.tif"], output=out, model=model, mode="apg",
                                     diameter=12))  # fmt: skip
    assert not out.exists()
    import dataclasses

    monkeypatch.setattr(model, "card", dataclasses.replace(model.card, working_diameter=30.0))
    result = segment_batch(SegmentRequest([folder / "a.tif"], output=out, model=model,
                                          mode="apg", settings=SETTINGS, diameter_um=5.0))  # fmt: skip
    assert seen == [pytest.approx(20.0)]  # 5 µm / 0.25 µm per pixel
    assert result.records[0].diameter == pytest.approx(20.0)
    record = json.loads((out / "a_segmentation.json").read_text())
    assert record["diameter_px"] == pytest.approx(20.0) and record["scale"] == 0.5
