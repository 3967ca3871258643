import numpy as np
import pytest
import zarr

from samscope.embeddings import compute_embeddings, data_hash, load_embeddings
from samscope.errors import CacheMismatchError, InputError


def test_2d_embeddings_shape_and_determinism(test_model, blobs_image):
    a = compute_embeddings(blobs_image, test_model)
    b = compute_embeddings(blobs_image.astype(np.float32), test_model)
    assert a.features.shape == (1, 1, 32, 16, 16)
    assert a.image_shape == (180, 240) and a.axes == "YX"
    np.testing.assert_allclose(a.features, b.features, atol=1e-5)  # dtype does not matter
    assert a.signature["data_hash"] != b.signature["data_hash"]


def test_stack_embeds_every_plane_like_2d(test_model, blobs_image):
    stack = np.stack([blobs_image, blobs_image[::-1], blobs_image[:, ::-1]])
    emb = compute_embeddings(stack, test_model, batch_size=2)
    assert emb.n_planes == 3 and emb.axes == "ZYX"
    single = compute_embeddings(stack[1], test_model)
    np.testing.assert_allclose(emb.features[1], single.features[0], atol=1e-5)
    frames = compute_embeddings(stack, test_model, axes="TYX")
    assert frames.axes == "TYX"


def test_tiled_embeddings(test_model, blobs_image):
    emb = compute_embeddings(blobs_image, test_model, tile_shape=(96, 128), halo=16)
    assert emb.features.shape[:2] == (1, 4)
    tile = emb.tiles[3]
    direct = compute_embeddings(blobs_image[tile.outer_slices], test_model)
    np.testing.assert_allclose(emb.features[0, 3], direct.features[0, 0], atol=1e-5)


def test_cache_roundtrip_and_reuse(test_model, blobs_image, tmp_path, monkeypatch):
    path = tmp_path / "emb.zarr"
    first = compute_embeddings(blobs_image, test_model, cache=path)
    assert path.is_dir()
    calls = []
    monkeypatch.setattr(test_model, "encode", lambda px: calls.append(px) or None)
    again = compute_embeddings(blobs_image, test_model, cache=path)  # nothing recomputed
    assert calls == []
    np.testing.assert_array_equal(np.asarray(again.features[:]), np.asarray(first.features))
    loaded = load_embeddings(path)
    assert loaded.image_shape == (180, 240) and loaded.model_name == "vit_test"


def test_cache_for_other_image_or_settings_is_refused(test_model, blobs_image, tmp_path):
    path = tmp_path / "emb.zarr"
    compute_embeddings(blobs_image, test_model, cache=path)
    other = blobs_image.copy()
    other[0, 0] += 1
    with pytest.raises(CacheMismatchError, match="data_hash"):
        compute_embeddings(other, test_model, cache=path)
    with pytest.raises(CacheMismatchError, match="tile_shape"):
        compute_embeddings(blobs_image, test_model, cache=path, tile_shape=64)


def test_corrupted_cache_is_an_error(test_model, blobs_image, tmp_path):
    path = tmp_path / "emb.zarr"
    compute_embeddings(blobs_image, test_model, cache=path)
    (path / "zarr.json").write_text("{not json")
    with pytest.raises(CacheMismatchError, match="damaged"):
        compute_embeddings(blobs_image, test_model, cache=path)
    (tmp_path / "plain").mkdir()
    with pytest.raises(CacheMismatchError):
        compute_embeddings(blobs_image, test_model, cache=tmp_path / "plain")


def test_interrupted_volume_resumes(test_model, blobs_image, tmp_path, monkeypatch):
    stack = np.stack([blobs_image, blobs_image // 2, blobs_image[::-1]])
    path = tmp_path / "vol.zarr"
    real = test_model.encode
    count = {"n": 0}

    def flaky(px):
        count["n"] += 1
        if count["n"] == 3:
            raise KeyboardInterrupt
        return real(px)

    monkeypatch.setattr(test_model, "encode", flaky)
    with pytest.raises(KeyboardInterrupt):
        compute_embeddings(stack, test_model, cache=path)
    done = np.asarray(zarr.open_group(str(path))["done"][:])
    assert done.sum() == 2
    with pytest.raises(CacheMismatchError, match="incomplete"):
        load_embeddings(path)
    monkeypatch.setattr(test_model, "encode", lambda px: (count.__setitem__("n", count["n"] + 1), real(px))[1])
    count["n"] = 0
    resumed = compute_embeddings(stack, test_model, cache=path)
    assert count["n"] == 1  # only the missing plane
    fresh = compute_embeddings(stack, test_model)
    np.testing.assert_allclose(np.asarray(resumed.features[:]), fresh.features, atol=1e-5)


def test_bad_inputs(test_model):
    with pytest.raises(InputError, match="NaN"):
        compute_embeddings(np.full((20, 20), np.nan, np.float32), test_model)
    with pytest.raises(InputError, match="empty"):
        compute_embeddings(np.zeros((0, 20)), test_model)
    with pytest.raises(InputError, match="axes"):
        compute_embeddings(np.zeros((2, 3, 20, 20)), test_model)
    with pytest.raises(InputError, match="halo"):
        compute_embeddings(np.zeros((20, 20)), test_model, halo=4)
    const = compute_embeddings(np.full((20, 20), 5, np.uint8), test_model)  # constant is fine
    assert np.isfinite(const.features).all()


def test_data_hash_streams_memmap_in_blocks(tmp_path, monkeypatch):
    import samscope.embeddings as emb_mod

    arr = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.uint16, shape=(50, 64, 64))
    arr[:] = np.arange(50 * 64 * 64).reshape(arr.shape) % 65000
    arr.flush()
    whole = data_hash(np.asarray(arr))
    monkeypatch.setattr(emb_mod, "_HASH_BLOCK_BYTES", 64 * 64 * 2 * 3)  # 3 planes per block
    assert data_hash(arr) == whole  # the same value whatever the block size
    arr2 = np.asarray(arr).copy()
    arr2[49, 63, 63] += 1
    assert data_hash(arr2) != whole
