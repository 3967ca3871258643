"""``samscope prompt --sequential``: the points are corrective clicks, as in the annotator."""

from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from samscope.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_sequential_points_are_corrections_decoded_by_the_shared_rule(tmp_path, capsys):
    from samscope.embeddings import compute_embeddings
    from samscope.models.registry import load_model
    from samscope.prompt_corrections import segment_clicks
    from samscope.prompt_inputs import local_radius

    im = tifffile.imread(EXAMPLES / "nuclei.tif")
    gt = tifffile.imread(EXAMPLES / "nuclei_labels.tif")
    ids, areas = np.unique(gt[gt > 0], return_counts=True)
    obj = gt == ids[np.argsort(-areas, kind="stable")[2]]
    first = np.unravel_index(int(np.argmax(ndi.distance_transform_edt(obj))), obj.shape)
    model = load_model("samscope-generalist")
    emb = compute_embeddings(im, model)
    one = segment_clicks(model, emb, np.array([first], float)).mask
    ring = np.argwhere((ndi.distance_transform_edt(one) >= 2) & (ndi.distance_transform_edt(one) < 3))
    click = ring[np.argmax(((ring - np.array(first)) ** 2).sum(1))]  # 2 px inside, far side
    want = segment_clicks(model, emb, np.array([first, click], float), np.array([1, 0])).mask

    path, out = tmp_path / "nuclei.tif", tmp_path / "mask.tif"
    tifffile.imwrite(path, im)
    try:
        main(["prompt", str(path), "-p", f"{first[0]},{first[1]};{click[0]},{click[1]}", "-l", "1,0",
              "--sequential", "--native", "-o", str(out)])
    except SystemExit as exc:  # pragma: no cover - shown on failure
        raise AssertionError(f"exit {exc.code}: {capsys.readouterr().err}") from None
    got = tifffile.imread(out) > 0
    assert (got == want).all()  # the library's rule, not the two points decoded together
    yy, xx = np.mgrid[: im.shape[0], : im.shape[1]]
    near = (yy - click[0]) ** 2 + (xx - click[1]) ** 2 <= local_radius(model, emb) ** 2
    assert (got[~near] == one[~near]).all()  # away from the correction the one-click mask stays
    assert (got != one).any()  # and the correction did something
