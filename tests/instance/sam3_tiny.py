"""A tiny random ``transformers.Sam3Model`` (56² input) and a toy tokenizer, for CPU tests."""

from __future__ import annotations

WORDS = ("nucleus", "cell", "nuclei", "mitochondrion")


def tiny_sam3_model(seed: int = 0, *, size: int = 56, queries: int = 8, vocab: int = 16, positions: int = 8):
    """A seeded random Sam3Model whose ViT sees ``size``² (patch 14)."""
    import torch
    from transformers import Sam3Config, Sam3Model

    grid = size // 14
    config = Sam3Config(
        vision_config=dict(
            backbone_config=dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=2, image_size=size, patch_size=14, window_size=2,
                                 global_attn_indexes=[1], pretrain_image_size=size),
            fpn_hidden_size=32,
            backbone_feature_sizes=[[grid * 4, grid * 4], [grid * 2, grid * 2], [grid, grid]],
        ),
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=positions, projection_dim=32,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0),
        geometry_encoder_config=dict(hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64),
        detr_encoder_config=dict(hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64),
        detr_decoder_config=dict(hidden_size=32, num_layers=1, num_queries=queries, num_attention_heads=2,
                                 intermediate_size=64),
        mask_decoder_config=dict(hidden_size=32, num_upsampling_stages=2, num_attention_heads=2),
    )  # fmt: skip
    torch.manual_seed(seed)
    return Sam3Model(config).eval()


def toy_tokenizer(text: str):
    """Token ids for a few known words (start 1, end 2, padded to 8 with 0); unknown words → 3."""
    ids = [1] + [4 + WORDS.index(w) if w in WORDS else 3 for w in text.lower().split()][:6] + [2]
    mask = [1] * len(ids) + [0] * (8 - len(ids))
    return ids + [0] * (8 - len(ids)), mask


def save_tiny_sam3_folder(folder):
    """A SAM3 Hugging Face folder: tiny random weights and a character-level CLIP tokenizer."""
    import json
    from pathlib import Path

    from transformers import CLIPTokenizer

    folder = Path(folder)
    vocab = {"!": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab.update({c: 3 + i for i, c in enumerate(letters)})
    vocab.update({c + "</w>": 29 + i for i, c in enumerate(letters)})
    raw = folder / "raw"
    raw.mkdir(parents=True)
    (raw / "vocab.json").write_text(json.dumps(vocab))
    (raw / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"), pad_token="!").save_pretrained(folder)
    tiny_sam3_model(vocab=64, positions=32).save_pretrained(folder)
    for f in raw.iterdir():
        f.unlink()
    raw.rmdir()
    return folder
