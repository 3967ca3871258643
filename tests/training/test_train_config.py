"""Training configuration: TOML, flags, and the errors for bad fields."""

from __future__ import annotations

import pytest

from samscope.errors import InputError
from samscope.training.config import SECTIONS, TrainConfig, flag_fields, load_config


def write(tmp_path, text):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_unknown_field_is_named_with_the_valid_ones(tmp_path):
    path = write(tmp_path, "[optim]\nlr = 1e-4\nlearning_rate = 3\n")
    with pytest.raises(InputError) as err:
        load_config(path)
    msg = str(err.value)
    assert "'learning_rate'" in msg and "[optim]" in msg
    assert "lr" in msg and "weight_decay" in msg and "max_steps" in msg  # the valid fields


def test_unknown_section_lists_sections(tmp_path):
    with pytest.raises(InputError, match="unknown section.*'training'.*valid sections: data"):
        load_config(write(tmp_path, "[training]\nlr = 1\n"))


def test_top_level_field_is_an_error(tmp_path):
    with pytest.raises(InputError, match="'lr'"):
        load_config(write(tmp_path, "lr = 1e-4\n"))


@pytest.mark.parametrize(
    "text, match",
    [
        ('[optim]\nlr = "fast"\n', "optim.*lr must be a number"),
        ("[optim]\nmax_steps = 1.5\n", "max_steps must be an integer"),
        ("[optim]\nlr = -1.0\n", "optim.lr must be > 0"),
        ('[optim]\nscheduler = "cosine"\n', "optim.scheduler must be one of"),
        ('[model]\nfreeze = ["decoder"]\n', "model.freeze entries must be one of"),
        ("[objectives]\nprompt = false\n", "nothing to train"),
        ("[data]\npatch_size = 0\n", "data.patch_size must be > 0"),
        ('[data]\nsimulate = "bacteria"\n', "data.simulate must be one of"),
        ("[augment]\nscale_min = 1.5\nscale_max = 1.2\n", "scale_min/scale_max"),
        ('[model]\nlora_rank = 4\nfreeze = ["image_encoder"]\n', "LoRA"),
        ("[optim]\nlr = \n", "not valid TOML"),
        ('[architecture]\nname = "x"\nwidth = 3\n', "'width'"),
    ],
)
def test_bad_values(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_round_trip_and_flags(tmp_path):
    cfg = TrainConfig().replace(lr=3e-4, freeze="prompt_encoder,mask_decoder", flip="false")
    assert cfg.optim.lr == 3e-4
    assert cfg.model.freeze == ("prompt_encoder", "mask_decoder")
    assert cfg.augment.flip is False
    back = load_config(write(tmp_path, cfg.to_toml()))
    assert back == cfg
    with pytest.raises(InputError, match="unknown training option 'lrate'.*valid options"):
        cfg.replace(lrate=1.0)


def test_every_field_is_a_unique_flag():
    owners = flag_fields()
    total = sum(len(cls.__dataclass_fields__) for cls in SECTIONS.values())
    assert len(owners) == total


def test_recipes_load():
    from samscope.training.recipes import RECIPES, describe, load_recipe

    for name in RECIPES:
        cfg = load_recipe(name)
        assert isinstance(cfg, TrainConfig) and describe(name)
    mu = load_recipe("microsam_finetune")
    assert (mu.optim.lr, mu.optim.plateau_factor, mu.optim.plateau_patience) == (1e-5, 0.9, 3)
    assert (mu.objectives.n_objects, mu.objectives.n_sub_iterations) == (25, 8)
    assert (mu.objectives.mask_prob, mu.objectives.box_distortion, mu.optim.early_stopping) == (
        0.5, 0.025, 10,
    )
    assert load_recipe("samcell").optim.warmup_steps == 250
    assert load_recipe("mitochondria").model.freeze == ("image_encoder",)
