"""Label and mask TIFFs keep the pixel size, for Fiji (ImageJ tags / OME) and samscope."""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile

from samscope.io import read_image, write_image, write_labels


def test_uint16_labels_are_imagej_with_micrometre_scale(tmp_path):
    lab = np.zeros((40, 50), np.uint16)
    lab[5:9, 5:9] = 3
    path = write_labels(tmp_path / "a_labels.tif", lab, pixel_size=(80.0, 80.0))
    assert read_image(path).pixel_size == (80.0, 80.0)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.imagej_metadata["unit"] == "um"
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.08)  # µm per pixel, as Fiji shows it


def test_uint32_labels_are_ome_with_physical_size_and_resolution_tags(tmp_path):
    lab = np.zeros((40, 50), np.uint32)
    lab[5:9, 5:9] = 70_000
    path = write_labels(tmp_path / "b_labels.tif", lab, pixel_size=(65.0, 65.0))
    assert read_image(path).pixel_size == (65.0, 65.0)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        pixels = next(e for e in ET.fromstring(tif.ome_metadata).iter()
                      if e.tag.endswith("Pixels"))
        assert float(pixels.get("PhysicalSizeX")) == pytest.approx(0.065)
        assert pixels.get("PhysicalSizeXUnit") == "µm"
        page = tif.pages[0]
        assert page.tags["ResolutionUnit"].value == 3  # centimetre
        num, den = page.tags["XResolution"].value
        assert 1e7 * den / num == pytest.approx(65.0)


def test_mask_stacks_and_volumes_keep_the_scale(tmp_path):
    masks = np.zeros((3, 20, 30), np.uint8)
    masks[1, 2:5, 2:5] = 1
    path = write_image(tmp_path / "m.tif", masks, axes="ZYX", pixel_size=(math.nan, 80, 80))
    back = read_image(path)
    assert back.axes == "ZYX" and math.isnan(back.pixel_size[0]) and back.pixel_size[1:] == (80, 80)
    vol = np.zeros((4, 20, 30), np.uint16)
    path = write_labels(tmp_path / "v_labels.tif", vol + 1, pixel_size=(300, 100, 100))
    assert read_image(path).pixel_size == (300, 100, 100)
