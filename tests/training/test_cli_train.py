"""``samscope train``: help, flags, --check, errors as one line."""

from __future__ import annotations

from samscope.cli.main import main


def run(argv, capsys):
    code = 0
    try:
        main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_examples_and_flags(capsys):
    code, out, _ = run(["train", "--help"], capsys)
    assert code == 0
    for text in ("Examples", "--patch-size", "--lora-rank", "--n-sub-iterations", "--mask-prob",
                 "--freeze", "--max-steps", "--out-dir", "--recipe"):
        assert text in out, text


def test_list_recipes(capsys):
    code, out, _ = run(["train", "--list-recipes"], capsys)
    assert code == 0 and "microsam_finetune" in out and "samcell" in out


def test_check_reads_config_and_flags(tmp_path, blob_dir, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[data]\ntrain_images = ["{blob_dir / "images"}"]\ntrain_labels = ["{blob_dir / "labels"}"]\n'
        '[model]\nmodel = "vit_test"\ninit = "random"\n'
    )
    code, out, _ = run(["train", str(cfg), "--patch-size", "128", "--lora-rank", "2", "--check"], capsys)
    assert code == 0
    assert "patch_size = 128" in out and "lora_rank = 2" in out and "# ok: 6 training sample(s)" in out


def test_bad_flag_value_is_one_line(tmp_path, capsys):
    code, _, err = run(["train", "--lr", "-1", "--check"], capsys)
    assert code == 2 and "optim.lr must be > 0" in err


def test_bad_config_field(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[optim]\nlearning_rate = 1\n")
    code, _, err = run(["train", str(cfg)], capsys)
    assert code == 2 and "'learning_rate'" in err
