"""The shared correction rule (prompt_corrections.refine): previous logits fed, local update."""

from types import SimpleNamespace

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.prompt_corrections import DEFAULT_MERGE, continues, refine, segment_clicks
from samscope.prompt_inputs import LOCAL_RADIUS


def _fake_decoder(monkeypatch, masks):
    """segment_from_prompts returning ``masks`` in turn; records every call's keyword arguments."""
    import samscope.prompting

    queue = iter(masks)
    calls = []

    def fake(model, emb, **kwargs):
        calls.append(kwargs)
        m = next(queue)
        k = 3 if kwargs.get("multimask") else 1
        logits = np.full((k, 4, 4), float(len(calls)), np.float32)
        iou = np.linspace(0.5, 0.9, k).astype(np.float32)[::-1] if k > 1 else np.ones(1, np.float32)
        return samscope.prompting.PromptResult(np.repeat(m[None], k, 0), iou, logits, np.zeros((k, 4), int))

    monkeypatch.setattr(samscope.prompting, "segment_from_prompts", fake)
    return calls


MODEL = SimpleNamespace(card=SimpleNamespace(working_diameter=5.0 / LOCAL_RADIUS))  # radius 5 px
EMB = SimpleNamespace(scale=1.0)


def _masks():
    first = np.zeros((40, 60), bool)
    first[10:30, 10:30] = True
    second = np.zeros((40, 60), bool)
    second[10:30, 14:34] = True  # the decoder moved the whole object 4 px right
    return first, second


def test_the_default_is_the_local_update_with_the_previous_logits(monkeypatch):
    assert DEFAULT_MERGE == "local"
    first, second = _masks()
    calls = _fake_decoder(monkeypatch, [first, second])
    s0 = refine(MODEL, EMB, np.array([[20.0, 20.0]]), np.array([1]))
    assert calls[0]["multimask"] and calls[0].get("mask_logits") is None  # a lone point: 3 candidates
    assert (s0.mask == first).all() and s0.corrections == 0 and s0.score == pytest.approx(0.9)
    s1 = refine(MODEL, EMB, np.array([[20.0, 20.0], [20.0, 31.0]]), np.array([1, 1]), None, s0)
    assert not calls[1]["multimask"]
    np.testing.assert_array_equal(calls[1]["mask_logits"], s0.logits)  # SAM's iterative prompting
    assert calls[1]["previous"] is s0.result
    yy, xx = np.mgrid[:40, :60]
    near = (yy - 20) ** 2 + (xx - 31) ** 2 <= 25
    assert (s1.mask[near] == second[near]).all()  # the decoder's correction at the click
    assert (s1.mask[~near] == first[~near]).all()  # the previous mask elsewhere: left edge kept
    assert s1.mask[20, 10] and not (s1.mask == second).all() and s1.corrections == 1


def test_other_prompts_are_decoded_afresh(monkeypatch):
    first, second = _masks()
    calls = _fake_decoder(monkeypatch, [first, second, second])
    s0 = refine(MODEL, EMB, np.array([[20.0, 20.0]]), np.array([1]))
    # the first click moved: not a correction
    s1 = refine(MODEL, EMB, np.array([[21.0, 20.0], [20.0, 31.0]]), np.array([1, 1]), None, s0)
    assert calls[1].get("mask_logits") is None and (s1.mask == second).all() and s1.corrections == 0
    # replace: the decoder's mask as it is, logits still fed
    s2 = refine(MODEL, EMB, np.array([[21.0, 20.0], [20.0, 31.0], [5.0, 5.0]]), np.array([1, 1, 0]),
                None, s1, merge="replace")
    assert calls[2]["mask_logits"] is not None and (s2.mask == second).all()
    with pytest.raises(InputError):
        refine(MODEL, EMB, np.array([[1.0, 1.0]]), np.array([1]), merge="nearby")
    with pytest.raises(InputError):
        refine(MODEL, EMB, np.array([[1.0, 1.0]]), np.array([1, 0]))


def test_continues_needs_the_same_box_and_the_same_first_clicks():
    prev = SimpleNamespace(points=np.array([[3.0, 4.0]]), labels=np.array([1]), box=None)
    more = np.array([[3.0, 4.0], [5.0, 6.0]])
    assert continues(prev, more, np.array([1, 0]), None)
    assert not continues(prev, more, np.array([0, 0]), None)  # the first click's sign changed
    assert not continues(prev, more, np.array([1, 0]), np.array([0, 0, 9, 9]))  # a box appeared
    assert not continues(prev, more[:1], np.array([1]), None)  # nothing new
    assert not continues(None, more, np.array([1, 0]), None)


def test_segment_clicks_replays_the_clicks_one_correction_each(monkeypatch):
    first, second = _masks()
    calls = _fake_decoder(monkeypatch, [first, second, second])
    pts = np.array([[20.0, 20.0], [20.0, 31.0], [2.0, 2.0]])
    state = segment_clicks(MODEL, EMB, pts, np.array([1, 1, 0]))
    assert len(calls) == 3 and [len(c["points"]) for c in calls] == [1, 2, 3]
    assert state.corrections == 2 and state.mask[20, 10]  # the left edge survived both corrections
    calls = _fake_decoder(monkeypatch, [first, second])
    box = np.array([5.0, 5.0, 35.0, 35.0])
    state = segment_clicks(MODEL, EMB, pts[1:2], np.array([1]), box)
    assert calls[0]["points"] is None and calls[1]["mask_logits"] is not None
    assert state.corrections == 1
