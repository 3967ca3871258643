"""SAM3 card and loading from a Hugging Face folder (tiny random model saved locally)."""

import pytest

from samscope.errors import CheckpointError


def test_card_names_the_official_source_and_is_never_downloaded():
    from samscope.models.sam3 import SAM3_SOURCE, sam3_cards

    (card,) = sam3_cards()
    assert card.name == "sam3" and card.urls == () and card.known_hash is None
    assert card.source == SAM3_SOURCE and "huggingface.co/facebook/sam3" in card.description
    assert card.default_mode == "concept"


def test_load_from_folder_and_clear_errors(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "instance"))
    from sam3_tiny import tiny_sam3_model, toy_tokenizer

    from samscope.models.sam3 import is_sam3_folder, load_sam3

    folder = tmp_path / "sam3"
    model = tiny_sam3_model()
    model.save_pretrained(folder)
    assert is_sam3_folder(folder) and not is_sam3_folder(tmp_path)
    loaded = load_sam3(folder, tokenizer=toy_tokenizer)
    a = dict(model.state_dict())
    b = dict(loaded.model.state_dict())
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    with pytest.raises(CheckpointError, match="tokenizer"):
        load_sam3(folder)  # no tokenizer files saved
    pt = tmp_path / "sam3.pt"
    pt.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="Hugging Face folder"):
        load_sam3(pt)
    with pytest.raises(CheckpointError, match="not a SAM3 model folder"):
        load_sam3(tmp_path)

    # import into the cache, then `--model sam3`; nothing imported yet: a clear message
    from samscope.errors import InputError, ModelNotFoundError
    from samscope.models.sam3 import cached_sam3_folder, import_sam3_folder, sam3_or_none

    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ModelNotFoundError, match="gated"):
        sam3_or_none("sam3")
    assert sam3_or_none("vit_b") is None and sam3_or_none(tmp_path) is None
    with pytest.raises(CheckpointError, match="tokenizer"):
        import_sam3_folder(folder)
    (folder / "vocab.json").write_text("{}")
    dest = import_sam3_folder(folder)
    assert dest == cached_sam3_folder() and (dest / "config.json").is_file()
    with pytest.raises(InputError, match="already imported"):
        import_sam3_folder(folder)
    assert import_sam3_folder(folder, replace=True) == dest
    assert sorted(p.name for p in dest.parent.iterdir()) == ["sam3"]  # no temporary folders left
