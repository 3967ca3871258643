"""``samscope evaluate-interactive --corrections samscope``: the annotator's rule, measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from samscope.cli.main import main
from samscope.errors import InputError
from samscope.pipeline.interactive import InteractiveRequest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 96² crop of the example zoomed ×2.5: nuclei of ≈ 77 px, far from the 28-px working size."""
    image = tifffile.imread(EXAMPLES / "nuclei.tif")[:96, :96].astype(np.float32)
    labels = tifffile.imread(EXAMPLES / "nuclei_labels.tif")[:96, :96]
    root = tmp_path_factory.mktemp("big")
    tifffile.imwrite(root / "img.tif", ndi.zoom(image, 2.5, order=1).astype(np.uint16))
    tifffile.imwrite(root / "gt.tif", ndi.zoom(labels, 2.5, order=0))
    return root


def _run(root: Path, rule: str) -> dict:
    out = root / f"out_{rule}"
    code = 0
    try:
        main(["evaluate-interactive", str(root / "img.tif"), str(root / "gt.tif"), "--model",
              "samscope-generalist", "-n", "2", "--corrections", rule, "-o", str(out)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0
    return json.loads((out / "interactive.json").read_text())


def test_samscope_rule_is_the_library_rule_at_the_object_scale(big):
    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.interactive import model_segmenter, run_interactive
    from samscope.instance.scale import interactive_scale
    from samscope.models.registry import load_model

    ours, usam = _run(big, "samscope"), _run(big, "usam")
    assert ours["corrections"] == "samscope" and ours["feed_logits"] is True
    assert usam["corrections"] == "usam" and usam["feed_logits"] is False
    image, labels = tifffile.imread(big / "img.tif"), tifffile.imread(big / "gt.tif")
    net = load_model("samscope-generalist")
    scale, _ = interactive_scale(image, net)
    assert scale < 0.6  # the size estimate shrinks these nuclei to the working size
    emb = compute_embeddings(image, net, scale=scale)
    direct = run_interactive(model_segmenter(net, emb, multimask="single-point", merge="local"),
                             labels, mode="point", n_iterations=2, feed_logits=True)
    assert [r["msa"] for r in ours["summary"]] == pytest.approx(direct.msa)
    assert [r["msa"] for r in ours["summary"]] != pytest.approx([r["msa"] for r in usam["summary"]])


def test_unknown_rule_is_refused(tmp_path):
    with pytest.raises(InputError, match="--corrections must be one of usam, samscope"):
        InteractiveRequest(tmp_path, tmp_path, corrections="focalclick")
