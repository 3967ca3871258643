import numpy as np
import pytest


@pytest.fixture(scope="session")
def test_model():
    from samscope.models.registry import load_model

    return load_model("vit_test", device="cpu")


def ellipsoids(shape=(7, 48, 64), centres=((3, 14, 18, 2.2), (3, 32, 44, 1.2)), radius=9.0):
    """A small anisotropic volume of bright ellipsoids and its labels: (image uint8, labels)."""
    z, y, x = np.indices(shape)
    labels = np.zeros(shape, np.uint16)
    image = np.full(shape, 10.0)
    for i, (cz, cy, cx, rz) in enumerate(centres, start=1):
        inside = ((z - cz) / rz) ** 2 + ((y - cy) / radius) ** 2 + ((x - cx) / radius) ** 2 <= 1
        labels[inside] = i
        image[inside] = 200.0
    return image.astype(np.uint8), labels


@pytest.fixture()
def volume():
    return ellipsoids()
