import numpy as np
import pytest


@pytest.fixture(scope="session")
def test_model():
    from samscope.models.registry import load_model

    return load_model("vit_test", device="cpu")


@pytest.fixture()
def blobs_image():
    """A 2-D uint16 image with a high offset (like the HeLa data) and bright disks."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:180, :240]
    img = np.full((180, 240), 33000.0)
    for cy, cx in [(40, 50), (100, 160), (140, 60)]:
        img += 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 12.0**2))
    img += rng.normal(0, 100, img.shape)
    return img.astype(np.uint16)
