"""Helpers: write a folder that looks like ``samscope segment``'s output."""

import json
from pathlib import Path

import numpy as np
import pytest

from samscope.evaluation.report import write_csv
from samscope.instance.instances import CroppedMasks, Instances, object_table
from samscope.io import write_image, write_labels


def write_result(folder: Path, name: str, labels: np.ndarray, *, masks=None, image=None,
                 image_dir: Path | None = None, pixel_size_nm=80.0, model="samscope-lm",
                 record=True, table=True):
    """Write NAME_labels.tif, NAME_masks.tif, NAME_objects.csv, NAME_segmentation.json (and
    the image under ``image_dir``) as samscope segment does."""
    folder.mkdir(parents=True, exist_ok=True)
    px = None if pixel_size_nm is None else (pixel_size_nm, pixel_size_nm)
    write_labels(folder / f"{name}_labels.tif", labels, pixel_size=px, overwrite=True)
    if masks is not None and len(masks):
        inst = Instances.from_masks(CroppedMasks.from_dense(masks), np.ones(len(masks)))
        write_image(folder / f"{name}_masks.tif", masks.astype(np.uint8), axes="ZYX",
                    pixel_size=None if px is None else (np.nan, *px), overwrite=True)
    else:
        inst = Instances.from_labels(labels.astype(np.int64))
    image_path = None
    if image is not None:
        d = image_dir if image_dir is not None else folder
        d.mkdir(parents=True, exist_ok=True)
        image_path = d / f"{name}.tif"
        write_image(image_path, image.astype(np.float32), pixel_size=px, overwrite=True)
    if record:
        doc = {"input": str(image_path) if image_path else f"/nonexistent/{name}.tif",
               "model": model, "mode": "foreground", "pixel_size_nm": pixel_size_nm}
        (folder / f"{name}_segmentation.json").write_text(json.dumps(doc))
    if table:
        cols = ["id", "area", "centroid_y", "centroid_x", "bbox_y0", "bbox_x0", "bbox_y1",
                "bbox_x1", "score"]
        write_csv(folder / f"{name}_objects.csv", object_table(inst), columns=cols)


@pytest.fixture()
def result_writer():
    return write_result
