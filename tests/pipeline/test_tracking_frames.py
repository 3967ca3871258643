"""pipeline.tracking's per-frame segmentation: nuclei cut by the image border are kept smaller."""

import numpy as np

from samscope.pipeline.tracking import keep_border_fragments


def test_small_border_fragments_stay_small_interior_objects_go():
    lab = np.zeros((40, 40), np.uint16)
    lab[0:3, 10:15] = 1  # 15 px, on the border: a nucleus leaving the image
    lab[20:23, 20:25] = 2  # 15 px, inside: debris
    lab[5:15, 25:35] = 3  # 100 px, inside
    lab[38:40, 0:2] = 4  # 4 px, on the border: too small even there
    out = keep_border_fragments(lab, min_size=50, border_min_size=10)
    assert sorted(np.unique(out)[1:].tolist()) == [1, 3]
    assert (out[lab == 1] == 1).all() and lab[lab == 2].size and not out[lab == 2].any()
    assert keep_border_fragments(np.zeros((4, 4), np.uint16), 5, 1).shape == (4, 4)


def test_fragment_sizes_follow_the_objects_size():
    from types import SimpleNamespace

    from samscope.pipeline.tracking import fragment_sizes

    model = SimpleNamespace(card=SimpleNamespace(working_diameter=28.0, automatic=SimpleNamespace(min_size=200)))
    interior, border = fragment_sizes(model, 24.5, 1.0)  # resize skipped within tolerance
    assert abs(interior - 200 * (24.5 / 28) ** 2) < 1e-6
    assert abs(border - 0.05 * np.pi / 4 * 24.5**2) < 1e-6
    interior, _ = fragment_sizes(model, 14.0, 2.0)  # resized x2: 200 working px are 50 native px
    assert abs(interior - 50.0) < 1e-6


def test_fitted_tiles_follow_the_frame_at_its_working_scale():
    from types import SimpleNamespace

    from samscope.pipeline.tracking import fitted_tiles

    card = SimpleNamespace(working_diameter=28.0, tile_shape=224, halo=16)
    model = SimpleNamespace(card=card, image_size=256)
    assert fitted_tiles((700, 1100), model, 26.4) == {"tile_shape": (234, 220), "halo": (11, 18)}
    # objects of 56 px: the frame is segmented at half size, 350 x 550 -> 2 x 3 tiles
    kw = fitted_tiles((700, 1100), model, 56.0)
    assert kw["tile_shape"] == (175, 184)
    # no diameter for a scale-aware model (each frame estimates its own), untiled card, small frame
    assert fitted_tiles((700, 1100), model, None) == {}
    assert fitted_tiles((700, 1100), SimpleNamespace(card=SimpleNamespace(tile_shape=None), image_size=256), 26.4) == {}
    assert fitted_tiles((200, 240), model, 28.0) == {}


def test_fewer_tiles_reach_segment_only_when_asked(monkeypatch):
    from types import SimpleNamespace

    import samscope.instance.segment as seg
    from samscope.pipeline.tracking import segment_frames

    seen = []

    def fake_segment(frame, model, **kw):
        seen.append({k: kw.get(k) for k in ("tile_shape", "halo", "diameter")})
        return SimpleNamespace(labels=np.zeros(frame.shape, np.uint16), diameter=kw.get("diameter"), scale=1.0)

    monkeypatch.setattr(seg, "segment", fake_segment)
    monkeypatch.setattr(seg, "choose_mode", lambda model, mode: "ais")
    card = SimpleNamespace(working_diameter=28.0, tile_shape=224, halo=16, automatic=SimpleNamespace(min_size=0))
    model = SimpleNamespace(card=card, image_size=256, instance_head=None)
    data = np.random.default_rng(0).random((2, 700, 1100)).astype(np.float32)
    segment_frames(data, "TYX", model, diameter=26.4)
    assert seen[-1]["tile_shape"] is None and seen[-1]["diameter"] == 26.4
    segment_frames(data, "TYX", model, diameter=26.4, fewer_tiles=True)
    assert seen[-1]["tile_shape"] == (234, 220) and seen[-1]["halo"] == (11, 18)
