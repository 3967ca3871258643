"""Registry, offline cache, fetch/import and load_model (never touches the network)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pooch
import pytest
import requests
import torch

from samscope.errors import CheckpointError, InputError, ModelNotFoundError
from samscope.models import registry
from samscope.models.card import ModelCard
from samscope.models.checkpoint import save_checkpoint
from samscope.models.registry import (
    RemoteFile,
    cache_dir,
    fetch_model,
    file_hash,
    get_card,
    import_model,
    list_models,
    load_model,
    model_files,
    resolve_checkpoint,
)

MICRO_SAM = ["vit_b_lm", "vit_l_lm", "vit_b_em_organelles", "vit_l_em_organelles"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A private cache, and a registry restored after each test."""
    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "_CARDS", dict(registry._CARDS))
    monkeypatch.setattr(registry, "_DECODERS", dict(registry._DECODERS))
    return tmp_path / "cache"


@pytest.fixture()
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("samscope tried to download")

    monkeypatch.setattr(pooch, "retrieve", refuse)


@pytest.fixture()
def offline(monkeypatch):
    def fail(self, url, output_file, pooch_, check_only=False):
        raise requests.exceptions.ConnectionError(f"no network for {url}")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", fail)


@pytest.fixture(scope="module")
def test_model():
    return load_model("vit_test", device="cpu")


@pytest.fixture()
def local_files(tmp_path, test_model) -> dict[str, Path]:
    """vit_test's weights as µSAM publishes them: SAM weights and decoder in separate files."""
    folder = tmp_path / "dl"
    folder.mkdir()
    sam_file = save_checkpoint(folder / "vit_t.pt", test_model.sam, format="segment-anything")
    decoder_file = folder / "vit_t_decoder.pt"
    torch.save(test_model.instance_head.state_dict(), decoder_file)
    both = save_checkpoint(folder / "my_model.pt", test_model.sam, instance_head=test_model.instance_head)
    return {"model": sam_file, "decoder": decoder_file, "combined": both}


def _register_local(name: str, files: dict[str, Path], algorithm: str = "xxh128") -> ModelCard:
    card = ModelCard(
        name=name,
        architecture="vit_test",
        urls=(f"https://example.invalid/{name}.pt",),
        known_hash=file_hash(files["model"], algorithm),
        filename=f"{name}.pt",
        source="test-local",
        has_instance_head=True,
    )
    decoder = RemoteFile(
        "decoder",
        (f"https://example.invalid/{name}_decoder.pt",),
        file_hash(files["decoder"], algorithm),
        f"{name}_decoder.pt",
    )
    return registry.register(card, decoder=decoder)


def _outputs(model):
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        emb = model.sam.get_image_embeddings(x)
        points = torch.tensor([[[[60.0, 90.0]]]])
        masks = model.sam(image_embeddings=emb, input_points=points).pred_masks
        maps = model.instance_head(emb) if model.instance_head is not None else None
    return emb, masks, maps


# ------------------------------------------------------------------------------------- cards


def test_builtin_cards():
    names = [c.name for c in list_models()]
    from samscope.models.sam2_cards import sam2_cards

    sam2 = [c.name for c in sam2_cards()]  # SAM2.1 / SAM2.0 t, s, b+, l and sam2_hiera_test
    assert names == ["vit_b", "vit_l", "vit_h", *MICRO_SAM, "samscope-generalist", "samscope-lm", "samscope-mito",
                     *sam2, "sam3", "vit_test"]  # fmt: skip
    for name in ["samscope-lm", "samscope-mito"]:
        card = get_card(name)
        assert card.shipped and card.source == "samscope" and not model_files(name)
        assert card.architecture == "samscope_compact" and card.has_instance_head
    for name in ["vit_b", "vit_l", "vit_h"]:
        card = get_card(name)
        assert card.architecture == name and card.source == "meta" and not card.has_instance_head
        assert card.urls[0].startswith("https://dl.fbaipublicfiles.com/segment_anything/sam_")
        assert card.licence == "Apache-2.0"
    for name in MICRO_SAM:
        card = get_card(name)
        assert card.has_instance_head and card.source == "micro-sam" and card.licence == "CC-BY-4.0"
        files = model_files(name)
        assert [f.role for f in files] == ["model", "decoder"]
        assert files[1].urls[0].endswith("_decoder.pt")
        assert card.automatic.min_size == 100
        assert card.automatic.pred_iou_thresh < 0.88  # fine-tuned models are calibrated lower
    for card in list_models():
        if card.known_hash:
            assert re.fullmatch(r"xxh128:[0-9a-f]{32}", card.known_hash)
    lm = get_card("vit_b_lm").automatic
    assert (lm.pred_iou_thresh, lm.stability_score_thresh) == (0.65, 0.7)
    assert get_card("vit_b").known_hash == "xxh128:6923c33df3637b6a922d7682bfc9a86b"
    assert model_files("vit_test") == ()
    with pytest.raises(ModelNotFoundError, match="registered models: vit_b"):
        get_card("vit_x")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(get_card("vit_b"))


def test_cache_dir_reads_the_environment_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "a"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "b"))
    assert cache_dir() == tmp_path / "b"
    monkeypatch.delenv("SAMSCOPE_CACHE_DIR")
    assert cache_dir() == Path(pooch.os_cache("samscope"))


def test_import_of_models_package_is_cheap():
    code = "import sys, samscope.models as m; m.get_card('vit_b'); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------- vit_test


def test_vit_test_is_deterministic_and_leaves_global_rng_alone(test_model):
    before = torch.random.get_rng_state()
    again = load_model("vit_test", device="cpu")
    assert torch.equal(before, torch.random.get_rng_state())
    for a, b in zip(test_model.sam.state_dict().values(), again.sam.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert test_model.instance_head is not None
    assert test_model.card.source == "test" and "RANDOM" in test_model.card.description
    assert resolve_checkpoint("vit_test") == (get_card("vit_test"), None)


# ---------------------------------------------------------------------------- missing, fetch


def test_missing_model_names_url_and_import_command(no_download, cache):
    with pytest.raises(ModelNotFoundError) as info:
        load_model("vit_b_lm", device="cpu")
    message = str(info.value)
    assert get_card("vit_b_lm").urls[0] in message
    assert "samscope models import FILE --name vit_b_lm" in message
    assert str(cache / "models" / "vit_b_lm.pt") in message
    with pytest.raises(ModelNotFoundError, match="samscope models fetch vit_h"):
        resolve_checkpoint("vit_h")


def test_fetch_without_network_is_a_clear_error(offline, cache):
    with pytest.raises(ModelNotFoundError) as info:
        fetch_model("vit_b", progress=False)
    message = str(info.value)
    assert "could not download" in message and "no network" in message
    assert get_card("vit_b").urls[0] in message
    assert str(cache / "models" / "sam_vit_b_01ec64.pth") in message
    assert "samscope models import FILE --name vit_b" in message
    with pytest.raises(ModelNotFoundError, match="could not download"):
        load_model("vit_b", download=True, device="cpu")


def test_fetch_downloads_and_checks_hashes(monkeypatch, local_files, test_model):
    served = {"local_model.pt": local_files["model"], "local_model_decoder.pt": local_files["decoder"]}

    def serve(self, url, output_file, pooch_, check_only=False):
        shutil.copyfile(served[url.rsplit("/", 1)[1]], output_file)

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", serve)
    _register_local("local_model", local_files)
    path = fetch_model("local_model", progress=False)
    assert path.read_bytes() == local_files["model"].read_bytes()
    model = load_model("local_model", device="cpu")
    for ours, theirs in zip(_outputs(model), _outputs(test_model), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)

    served["local_model.pt"] = local_files["decoder"]  # the server sends the wrong file
    (path).unlink()
    with pytest.raises(CheckpointError, match="published hash"):
        fetch_model("local_model", progress=False)


# ---------------------------------------------------------------------------------- import


@pytest.mark.parametrize("algorithm", ["xxh128", "sha256"])
def test_import_then_load(no_download, local_files, test_model, cache, algorithm):
    _register_local("local_model", local_files, algorithm)
    with pytest.raises(ModelNotFoundError, match="instance decoder"):  # only the weights so far
        import_model(local_files["model"], "local_model")
        load_model("local_model", device="cpu")
    dest = import_model(local_files["decoder"], "local_model")
    assert dest == cache / "models" / "local_model_decoder.pt"
    model = load_model("local_model", device="cpu")
    assert model.card.name == "local_model" and model.instance_head is not None
    for ours, theirs in zip(_outputs(model), _outputs(test_model), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert not list((cache / "models").glob(".import-*"))  # no temporary files left


def test_import_of_a_wrong_file_gives_both_hashes(local_files, cache):
    card = _register_local("local_model", local_files)
    wrong = local_files["combined"]
    with pytest.raises(CheckpointError) as info:
        import_model(wrong, "local_model")
    message = str(info.value)
    assert file_hash(wrong) in message and card.known_hash in message
    assert not (cache / "models" / "local_model.pt").exists()
    assert not list((cache / "models").glob(".import-*"))
    with pytest.raises(CheckpointError, match="no published hash"):
        import_model(wrong, "vit_test")
    with pytest.raises(InputError, match="no such file"):
        import_model(cache / "nothing.pt", "vit_b")


def test_corrupt_cached_file_is_reported(local_files, cache):
    _register_local("local_model", local_files)
    import_model(local_files["model"], "local_model")
    target = cache / "models" / "local_model.pt"
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="corrupt or incomplete.*samscope models fetch local_model"):
        resolve_checkpoint("local_model")


def test_sha256_helper_agrees_with_hashlib(local_files):
    digest = hashlib.sha256(local_files["model"].read_bytes()).hexdigest()
    assert file_hash(local_files["model"], "sha256") == f"sha256:{digest}"


# --------------------------------------------------------------------------- loading files


def test_load_model_from_a_file(no_download, local_files, test_model):
    model = load_model(local_files["combined"], device="cpu")
    assert model.card.name == "my_model" and model.card.architecture == "vit_test"
    assert model.card.known_hash == file_hash(local_files["combined"])
    assert model.card.has_instance_head and model.instance_head is not None
    for ours, theirs in zip(_outputs(model), _outputs(test_model), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    plain = load_model(str(local_files["model"]), device="cpu")
    assert plain.instance_head is None and not plain.card.has_instance_head
    card, path = resolve_checkpoint(local_files["model"])
    assert path == local_files["model"] and card.architecture == "vit_test"
    with pytest.raises(CheckpointError, match="only an instance decoder"):
        load_model(local_files["decoder"], device="cpu")


def test_load_model_with_checkpoint_keeps_the_card(no_download, local_files):
    registry.register(ModelCard(name="tiny_lm", architecture="vit_test", source="test-local"))
    model = load_model("tiny_lm", checkpoint=local_files["combined"], device="cpu")
    assert model.card.name == "tiny_lm" and model.card.source == "local"
    assert model.card.known_hash == file_hash(local_files["combined"])
    with pytest.raises(CheckpointError, match="holds a vit_test model, but 'vit_b' is a vit_b"):
        load_model("vit_b", checkpoint=local_files["combined"], device="cpu")
    with pytest.raises(InputError, match="registered model name"):
        load_model(local_files["model"], checkpoint=local_files["combined"])
