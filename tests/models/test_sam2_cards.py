"""SAM2 registry cards: Meta's URLs, no invented hash, offline import checked by conversion."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from samscope.errors import CheckpointError
from samscope.models.registry import get_card, import_model, load_model, model_files

FIXTURE = Path(__file__).parent / "data" / "sam2_hiera_test_meta.npz"
META = [f"{v}_hiera_{k}" for v in ("sam2.1", "sam2") for k in ("t", "s", "b+", "l")]


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def tiny_meta_file(tmp_path) -> Path:
    path = tmp_path / "downloaded_tiny.pt"
    path.write_bytes(np.load(FIXTURE)["checkpoint"].tobytes())
    return path


def test_cards_point_at_meta_without_a_made_up_hash():
    for name in META:
        card = get_card(name)
        assert card.source == "meta" and card.licence == "Apache-2.0"
        assert card.architecture == "sam2_hiera_" + name.rsplit("_", 1)[1]
        folder = "092824" if name.startswith("sam2.1") else "072824"
        (file,) = model_files(name)
        assert file.urls[0] == f"https://dl.fbaipublicfiles.com/segment_anything_2/{folder}/{card.filename}"
        assert file.known_hash is None and "no published hash" in card.description
    assert get_card("sam2.1_hiera_b+").filename == "sam2.1_hiera_base_plus.pt"


def test_import_checks_the_architecture_by_conversion(cache, tiny_meta_file, monkeypatch):
    from samscope.models import registry

    with pytest.raises(CheckpointError, match="sam2_hiera_test SAM2 model, expected Meta's sam2_hiera_t"):
        import_model(tiny_meta_file, "sam2.1_hiera_t")
    assert not (cache / "models" / "sam2.1_hiera_tiny.pt").exists()
    # a card of the file's own architecture takes it, and it then loads offline
    card = replace(get_card("sam2.1_hiera_t"), name="sam2-tiny-for-test", architecture="sam2_hiera_test",
                   filename="sam2-tiny-for-test.pt")  # fmt: skip
    monkeypatch.setitem(registry._CARDS, card.name, card)  # removed again after the test
    dest = import_model(tiny_meta_file, card.name)
    assert dest.is_file() and dest.read_bytes() == tiny_meta_file.read_bytes()
    model = load_model(card.name, device="cpu")
    assert type(model).__name__ == "Sam2ScopeModel" and model.image_size == 256


def test_import_refuses_a_sam1_file(cache, tmp_path):
    from samscope.models.architectures import build_sam
    from samscope.models.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "vit.pth", build_sam("vit_test"), format="segment-anything")
    with pytest.raises(CheckpointError, match="segment-anything file"):
        import_model(path, "sam2.1_hiera_t")
