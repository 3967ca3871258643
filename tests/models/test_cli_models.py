"""``samscope models list|info|fetch|import`` (offline)."""

from __future__ import annotations

import pooch
import pytest
import requests
import torch
import typer
from typer.testing import CliRunner

from samscope.cli.models import register
from samscope.errors import CheckpointError, ModelNotFoundError
from samscope.models import registry
from samscope.models.card import ModelCard
from samscope.models.registry import RemoteFile, file_hash, load_model

runner = CliRunner()


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("noop", hidden=True)(lambda: None)  # keep `models` a sub-command group
    register(app)
    return app


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "_CARDS", dict(registry._CARDS))
    monkeypatch.setattr(registry, "_DECODERS", dict(registry._DECODERS))
    return tmp_path / "cache"


@pytest.fixture()
def offline(monkeypatch):
    def fail(self, url, output_file, pooch_, check_only=False):
        raise requests.exceptions.ConnectionError("no network")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", fail)


@pytest.mark.parametrize("command", ["list", "info", "fetch", "import"])
def test_every_command_has_help_with_an_example(app, command):
    result = runner.invoke(app, ["models", command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and f"samscope models {command}" in result.output


def test_group_help(app):
    result = runner.invoke(app, ["models", "--help"])
    assert result.exit_code == 0
    assert "samscope models fetch vit_b_lm" in result.output


def test_list(app):
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["NAME", "ARCH", "SOURCE"]
    for name in ["vit_b", "vit_l", "vit_h", "vit_b_lm", "vit_l_em_organelles", "vit_test"]:
        assert any(line.split()[0] == name for line in lines[1:])


def test_info(app, cache):
    result = runner.invoke(app, ["models", "info", "vit_b_lm"])
    assert result.exit_code == 0, result.output
    files = registry.model_files("vit_b_lm")
    for f in files:
        assert f.urls[0] in result.output and f.known_hash in result.output
    assert str(cache / "models" / "vit_b_lm.pt") in result.output and "missing" in result.output
    assert "pred_iou_thresh=0.65" in result.output
    result = runner.invoke(app, ["models", "info", "vit_nope"])
    assert isinstance(result.exception, ModelNotFoundError)


def test_fetch_offline_fails_clearly(app, offline):
    result = runner.invoke(app, ["models", "fetch", "vit_l", "--quiet"])
    assert isinstance(result.exception, ModelNotFoundError)
    assert "samscope models import FILE --name vit_l" in str(result.exception)


def test_import(app, tmp_path, cache):
    model = load_model("vit_test", device="cpu")
    weights = tmp_path / "weights.pt"
    torch.save({"model_state": model.sam.state_dict()}, weights)
    registry.register(
        ModelCard(
            name="tiny",
            architecture="vit_test",
            urls=("https://example.invalid/tiny.pt",),
            known_hash=file_hash(weights),
            filename="tiny.pt",
        ),
        decoder=RemoteFile("decoder", ("https://example.invalid/d.pt",), "xxh128:" + "0" * 32, "d.pt"),
    )
    result = runner.invoke(app, ["models", "import", str(weights), "--name", "tiny"])
    assert result.exit_code == 0, result.output
    assert "as the model file of tiny" in result.output
    assert (cache / "models" / "tiny.pt").read_bytes() == weights.read_bytes()
    listed = runner.invoke(app, ["models", "list"]).output
    assert any(line.split()[:1] == ["tiny"] and "partial" in line for line in listed.splitlines())

    other = tmp_path / "other.pt"
    other.write_bytes(b"something else")
    result = runner.invoke(app, ["models", "import", str(other), "-n", "tiny"])
    assert isinstance(result.exception, CheckpointError)
    assert file_hash(other) in str(result.exception)
