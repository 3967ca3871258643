"""Per-mode calibrations on a model card: stored, round-tripped, and applied to that mode only."""

from __future__ import annotations

import json
from dataclasses import fields

from samscope.instance.segment import config_class
from samscope.instance.settings import mode_of, mode_settings
from samscope.models.card import AutomaticDefaults, ModelCard, card_from_dict, card_to_dict


def test_mode_settings_survive_json_and_checkpoint_round_trips():
    card = ModelCard(
        name="x", architecture="vit_t",
        automatic=AutomaticDefaults(mode_settings=(("apg", "min_size", 60), ("distance", "peak_thresh", 0.3))),
    )  # fmt: skip
    back = card_from_dict(json.loads(json.dumps(card_to_dict(card))))
    assert back == card
    assert mode_settings(back, "apg") == {"min_size": 60}
    assert mode_settings(back, "ais") == {}
    old = card_to_dict(card)
    del old["automatic"]["mode_settings"]  # a checkpoint written before the field existed
    assert card_from_dict(old).automatic.mode_settings == ()


def test_shipped_calibrations_name_real_fields_of_their_modes():
    from samscope.models.builtin_cards import _shipped_cards

    for card in _shipped_cards():
        for mode, name, _ in card.automatic.mode_settings:
            cls = config_class(mode)
            assert name in {f.name for f in fields(cls)}, (card.name, mode, name)
            assert mode_of(cls()) == mode


def test_generalist_distance_mode_uses_its_calibration():
    from samscope.instance.distance import DistanceConfig
    from samscope.models.builtin_cards import _shipped_cards

    card = next(c for c in _shipped_cards() if c.name == "samscope-generalist")
    cfg = DistanceConfig().resolve(card)
    assert (cfg.peak_thresh, cfg.fill_thresh, cfg.min_size) == (0.5, 0.2, 100)
    lm = next(c for c in _shipped_cards() if c.name == "samscope-lm")
    assert DistanceConfig().resolve(lm).peak_thresh == 0.47  # SAMCell's, uncalibrated
