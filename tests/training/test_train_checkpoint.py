"""Checkpoints: resume at the right step with the same optimiser state; export loads everywhere."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from samscope.training.trainer import Trainer


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_resume_continues_with_the_same_state(tiny):
    config = tiny(objectives={"instance_head": True},
                  optim={"max_steps": 3, "val_every": 2}, run={"checkpoint_every": 2})
    first = Trainer(config, log=lambda *_: None)
    result = first.fit()
    assert result.step == 3
    last = first.ckpt_dir / "last.pt"
    assert last.is_file() and (first.ckpt_dir / "best.pt").is_file()
    assert (first.out_dir / "metrics.png").is_file() and (first.out_dir / "config.toml").is_file()
    # a new run in the same folder resumes from last.pt: same step, weights, optimiser state
    longer = config.replace(max_steps=5)
    second = Trainer(longer, log=lambda *_: None)
    second.load(last)
    assert second.step == 3
    a, b = first.optimizer.state_dict(), second.optimizer.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for key, state in a["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["state"][key][name])), name
    for (n1, p1), (n2, p2) in zip(first.model.named_parameters(), second.model.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    # training on continues from step 3 to 5; the metrics log keeps one row per step
    result = Trainer(longer, log=lambda *_: None).fit()
    assert result.step == 5
    steps = [int(r["step"]) for r in rows(first.out_dir / "metrics.csv") if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5]


def test_interrupted_run_loses_only_steps_since_the_checkpoint(tiny, monkeypatch):
    config = tiny(optim={"max_steps": 6}, run={"checkpoint_every": 2})
    trainer = Trainer(config, log=lambda *_: None)
    original = trainer.train_step
    calls = {"n": 0}

    def flaky(batches):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(batches)

    monkeypatch.setattr(trainer, "train_step", flaky)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    resumed = Trainer(config, log=lambda *_: None)
    resumed.load(trainer.ckpt_dir / "last.pt")
    assert resumed.step == 3  # saved on interruption after the 3 completed steps


def test_export_and_load_model_reproduce_outputs(tiny):
    from samscope.models.registry import load_model

    config = tiny(objectives={"instance_head": True, "distance_head": True},
                  optim={"max_steps": 2}, run={"name": "blob-model"})
    trainer = Trainer(config, log=lambda *_: None)
    result = trainer.fit()
    model = load_model(result.model_path, device="cpu")
    assert model.name == "blob-model" and model.card.source == "samscope"
    assert model.instance_head is not None and model.distance_head is not None
    # the exported model computes what the trained modules compute
    trainer.model.eval()
    pixels = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        # export holds best.pt: compare against the weights stored there
        best = load_model(trainer.ckpt_dir / "best.pt", device="cpu")
        expected = best.sam.vision_encoder(pixels).last_hidden_state
        got = model.encode(pixels)
        assert torch.allclose(got, expected, atol=1e-5)
        assert torch.allclose(model.instance_head(got), best.instance_head(expected), atol=1e-5)
        assert torch.allclose(model.distance_head(got), best.distance_head(expected), atol=1e-5)
    # last.pt (a training checkpoint with optimiser state) loads for inference as well
    last = load_model(trainer.ckpt_dir / "last.pt", device="cpu")
    with torch.no_grad():
        own = trainer.nets.sam.vision_encoder(pixels).last_hidden_state
    assert torch.allclose(last.encode(pixels), own, atol=1e-5)


def test_custom_architecture_round_trip(tmp_path):
    from samscope.models.architectures import ARCHITECTURES, SamArchitecture, build_sam
    from samscope.models.checkpoint import save_checkpoint
    from samscope.models.registry import load_model

    arch = SamArchitecture("tiny_custom_for_test", image_size=128, patch_size=16, hidden_size=32,
                           num_layers=2, num_heads=2, global_attn_indexes=(1,), window_size=4,
                           embed_dim=16, decoder_mlp_dim=32, decoder_heads=2)
    sam = build_sam(arch)
    path = save_checkpoint(tmp_path / "custom.pt", sam, format="samscope", architecture=arch)
    ARCHITECTURES.pop(arch.name, None)  # a fresh process would not know it
    model = load_model(path, device="cpu")
    assert model.arch == arch and model.image_size == 128
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.allclose(model.encode(x), sam.vision_encoder(x).last_hidden_state, atol=1e-5)


def test_micro_sam_export(tiny, tmp_path):
    from samscope.models.checkpoint import load_checkpoint
    from samscope.training.export import export_model

    trainer = Trainer(tiny(objectives={"instance_head": True}, optim={"max_steps": 1}),
                      log=lambda *_: None)
    result = trainer.fit()
    out = export_model(result.model_path, tmp_path / "mu.pt", format="micro-sam")
    converted = load_checkpoint(out)
    assert converted.format == "micro-sam" and converted.decoder_state
    assert np.isfinite(result.initial_metric)
