"""Corrections that change the mask only near the new clicks (prompt_inputs.local_update)."""

from types import SimpleNamespace

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.evaluation.interactive import PromptSpec, model_segmenter
from samscope.prompt_inputs import LOCAL_RADIUS, local_radius, local_update


def test_local_update_keeps_the_previous_mask_away_from_the_clicks():
    prev = np.zeros((40, 60), bool)
    prev[10:30, 10:30] = True
    new = np.zeros((40, 60), bool)
    new[10:30, 14:34] = True  # the decoder moved the whole object 4 px right
    new[2:6, 50:56] = True  # and added a far blob nobody clicked on
    out = local_update(prev, new, np.array([[20.0, 31.0]]), 5.0)
    yy, xx = np.mgrid[:40, :60]
    near = (yy - 20) ** 2 + (xx - 31) ** 2 <= 25
    assert (out[near] == new[near]).all()  # the new mask where the user clicked
    assert (out[~near] == prev[~near]).all()  # the previous one everywhere else
    assert out[20, 33] and out[20, 12]  # grown at the click, the left edge kept
    assert out[15, 10] and not out[4, 52]  # left edge away from the click and far blob: previous
    # no new click: the decoder's mask
    assert (local_update(prev, new, np.zeros((0, 2)), 5.0) == new).all()
    with pytest.raises(InputError):
        local_update(prev, new[:-1], np.array([[1.0, 1.0]]), 5.0)


def test_local_radius_follows_the_working_diameter_and_the_scale():
    model = SimpleNamespace(card=SimpleNamespace(working_diameter=28.0))
    assert local_radius(model, SimpleNamespace(scale=1.0)) == LOCAL_RADIUS * 28.0
    assert local_radius(model, SimpleNamespace(scale=0.5)) == pytest.approx(LOCAL_RADIUS * 56.0)
    assert local_radius(SimpleNamespace(card=None), SimpleNamespace(scale=1.0)) is None


def _fake_prompting(monkeypatch, masks):
    """segment_from_prompts returning ``masks`` in turn (one candidate each)."""
    import samscope.prompting

    calls = iter(masks)

    def fake(model, emb, **kwargs):
        m = next(calls)
        return samscope.prompting.PromptResult(
            m[None], np.ones(1, np.float32), np.zeros((1, 4, 4), np.float32), np.zeros((1, 4), int)
        )

    monkeypatch.setattr(samscope.prompting, "segment_from_prompts", fake)


@pytest.mark.parametrize("merge", ["local", "replace"])
def test_model_segmenter_local_merge(monkeypatch, merge):
    first = np.zeros((40, 60), bool)
    first[10:30, 10:30] = True
    second = np.zeros((40, 60), bool)
    second[10:30, 14:34] = True
    _fake_prompting(monkeypatch, [first, second])
    model = SimpleNamespace(card=SimpleNamespace(working_diameter=5.0 / LOCAL_RADIUS))
    seg = model_segmenter(model, SimpleNamespace(scale=1.0), merge=merge)
    one = PromptSpec(np.array([[20.0, 20.0]]), np.array([1]))
    two = PromptSpec(np.array([[20.0, 20.0], [20.0, 31.0]]), np.array([1, 1]))
    assert (seg(one).mask == first).all()
    out = seg(two).mask
    if merge == "replace":
        assert (out == second).all()
    else:  # radius 5 px around the new click (20, 31): grown there, the left edge kept
        assert out[20, 33] and out[20, 10] and out[15, 11] and not out[20, 36]
        assert not (out == second).all()
