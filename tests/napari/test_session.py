"""The GUI-free state of the annotators: committed objects, saving, automatic runs in halves."""

from __future__ import annotations

import numpy as np
import pytest

from samscope.errors import InputError, SamscopeError
from samscope.napari.session import (
    ObjectStore,
    load_model_for_gui,
    postprocess,
    predict,
    read_prompts,
)


def test_commit_takes_next_free_id_keeps_others_and_undoes():
    store = ObjectStore.empty((20, 20))
    a = np.zeros((20, 20), bool)
    a[2:8, 2:8] = True
    b = np.zeros((20, 20), bool)
    b[5:12, 5:12] = True
    assert store.commit(a, score=0.9) == 1
    assert store.commit(b, score=0.8) == 2
    assert (store.labels == 1).sum() == 36  # object 1 is not painted over
    assert (store.labels == 2).sum() == b.sum() - (a & b).sum()
    assert store.commit(a) == 0  # nothing free left
    assert store.undo() == 2 and store.next_id == 2 and store.n_objects == 1
    assert store.undo() == 1 and store.undo() is None and not store.labels.any()
    with pytest.raises(InputError):
        store.commit(np.ones((3, 3), bool))


def test_save_writes_labels_table_and_prompts(tmp_path):
    store = ObjectStore.empty((16, 16))
    m = np.zeros((16, 16), bool)
    m[3:9, 4:10] = True
    store.commit(m, score=0.75, prompts={"points": [[5, 6]], "labels": [1], "boxes": []})
    written = store.save(tmp_path, "img")
    from samscope.io import read_labels

    np.testing.assert_array_equal(read_labels(written["labels"]), store.labels)
    lines = written["table"].read_text().splitlines()
    header = lines[0].split(",")
    row = dict(zip(header, lines[1].split(","), strict=True))
    assert row["id"] == "1" and row["area_px"] == "36" and float(row["score"]) == 0.75
    assert read_prompts(written["prompts"])["objects"]["1"]["points"] == [[5, 6]]


def test_missing_or_bad_model_is_one_clear_error(tmp_path):
    with pytest.raises(SamscopeError, match="samscope models import"):
        load_model_for_gui("vit_b_lm")
    with pytest.raises(SamscopeError):
        load_model_for_gui(str(tmp_path / "nope.pt"))
    with pytest.raises(InputError):
        load_model_for_gui("  ")


def test_ais_in_halves_equals_segment_and_rethresholds(nuclei):
    from dataclasses import replace

    from samscope.instance.segment import segment
    from samscope.models.registry import load_model

    image, _ = nuclei
    model = load_model("samscope-generalist", device="cpu")
    pred, first = predict(image, model, "ais")
    whole = segment(image, model, mode="ais", diameter=pred.diameter)
    np.testing.assert_array_equal(first.labels, whole.labels)
    from samscope.napari.session import automatic_defaults

    strict = postprocess(pred, replace(automatic_defaults(model, "ais"), foreground_thresh=0.95))
    assert (strict.labels > 0).sum() < (first.labels > 0).sum()
