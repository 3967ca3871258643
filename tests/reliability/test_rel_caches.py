"""Embeddings caches verify themselves: damage is detected, named, and repaired by re-runs.

One reference cache of a 4-tile image is made per module; every case damages its own copy the
way disks and interrupted copies do (bytes overwritten, a chunk truncated, emptied or deleted,
the completeness record damaged or deleted, metadata gone) and checks that ``prompt`` still
gives exactly the reference mask, that ``embed`` says what it repaired, and that a cache opened
without its image names the damaged piece.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile
from _rel import expect_error, expect_ok

from samscope.errors import CacheMismatchError

CHUNK = "features/c/0/1/0/0/0"


@pytest.fixture(scope="module")
def reference(server, library, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    res = server.run(["embed", library / "blobs400.tif", "-o", "ref.zarr"], cwd=folder)
    expect_ok(res, "4 tile(s)")
    res = server.run(["prompt", library / "blobs400.tif", "-p", "100,100", "-b", "270,90,330,150",
                      "-o", "ref.tif", "-e", "ref.zarr"], cwd=folder)  # fmt: skip
    expect_ok(res)
    return folder


def _overwrite(path):
    data = bytearray(path.read_bytes())
    data[50:60] = bytes(10)
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


DAMAGE = {
    "bytes-overwritten": (CHUNK, _overwrite, "damaged"),
    "truncated": (CHUNK, _truncate, "damaged"),
    "emptied": (CHUNK, lambda p: p.write_bytes(b""), "damaged"),
    "deleted": (CHUNK, lambda p: p.unlink(), "missing"),
    "record-damaged": ("done/c/0/0", _overwrite, "completeness record"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_cache_is_named_and_repaired(samscope, library, reference, work, kind):
    from samscope.embeddings import load_embeddings

    piece, damage, word = DAMAGE[kind]
    cache = work / "c.zarr"
    shutil.copytree(reference / "ref.zarr", cache)
    damage(cache / piece)
    with pytest.raises(CacheMismatchError, match=word):  # opened without the image: named
        emb = load_embeddings(cache)
        emb.get(0, 1)
    res = samscope("prompt", library / "blobs400.tif", "-p", "100,100", "-b", "270,90,330,150",
                   "-o", "m.tif", "-e", cache)  # fmt: skip
    expect_ok(res)
    assert "repaired" in res.err
    np.testing.assert_array_equal(tifffile.imread(work / "m.tif"), tifffile.imread(reference / "ref.tif"))
    emb = load_embeddings(cache)  # repaired in place: complete and readable
    ref = load_embeddings(reference / "ref.zarr")
    for t in range(4):
        np.testing.assert_allclose(emb.get(0, t).numpy(), ref.get(0, t).numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", ["bytes-overwritten", "deleted"])
def test_embed_rerun_repairs_and_says_so(samscope, library, reference, work, kind):
    piece, damage, word = DAMAGE[kind]
    cache = work / "c.zarr"
    shutil.copytree(reference / "ref.zarr", cache)
    damage(cache / piece)
    res = samscope("embed", library / "blobs400.tif", "-o", cache)
    expect_ok(res, "repaired", "plane 0, tile 1", word)
    res = samscope("embed", library / "blobs400.tif", "-o", cache)
    expect_ok(res, "wrote")
    assert "repaired" not in res.out  # nothing left to repair


def test_deleted_record_recomputes_everything_silently_correct(samscope, library, reference, work):
    cache = work / "c.zarr"
    shutil.copytree(reference / "ref.zarr", cache)
    (cache / "done/c/0/0").unlink()  # nothing is known to be done: all recomputed
    expect_ok(samscope("embed", library / "blobs400.tif", "-o", cache))
    from samscope.embeddings import load_embeddings

    assert load_embeddings(cache).n_planes == 1


def _edit_signature(cache, **changes):
    meta = json.loads((cache / "zarr.json").read_text())
    meta["attributes"]["samscope_signature"].update(changes)
    (cache / "zarr.json").write_text(json.dumps(meta))


UNUSABLE = [  # caches that cannot be used: a clear error, the cache left as it was
    ("other-image", lambda c: None, ("embed", "{lib}/cells.tif", "-o", "{c}"), "other data"),
    ("other-tiling", lambda c: None, ("embed", "{lib}/blobs400.tif", "-o", "{c}", "--tile-shape", "128"),
     "tile_shape"),
    ("older-format", lambda c: _edit_signature(c, format_version=1),
     ("embed", "{lib}/blobs400.tif", "-o", "{c}"), "cache format"),
    ("no-group-metadata", lambda c: (c / "zarr.json").unlink(),
     ("embed", "{lib}/blobs400.tif", "-o", "{c}"), "not a samscope cache"),
    ("no-signature", lambda c: _edit_signature_drop(c),
     ("embed", "{lib}/blobs400.tif", "-o", "{c}"), "no samscope signature"),
    ("features-metadata-gone", lambda c: (c / "features/zarr.json").unlink(),
     ("embed", "{lib}/blobs400.tif", "-o", "{c}"), "damaged"),
    ("prompt-other-image", lambda c: None,
     ("prompt", "{lib}/cells.tif", "-p", "40,50", "-o", "m.tif", "-e", "{c}"), "other data"),
]


def _edit_signature_drop(cache):
    meta = json.loads((cache / "zarr.json").read_text())
    meta["attributes"].pop("samscope_signature")
    (cache / "zarr.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(("change", "args", "fragment"), [(c, a, f) for _, c, a, f in UNUSABLE],
                         ids=[i for i, *_ in UNUSABLE])  # fmt: skip
def test_unusable_cache_is_refused_and_kept(samscope, library, reference, work, change, args, fragment):
    cache = work / "c.zarr"
    shutil.copytree(reference / "ref.zarr", cache)
    change(cache)
    before = sorted((p.relative_to(cache), p.read_bytes()) for p in cache.rglob("*") if p.is_file())
    res = samscope(*(a.format(lib=library, c=cache) for a in args))
    expect_error(res, fragment)
    assert sorted((p.relative_to(cache), p.read_bytes()) for p in cache.rglob("*") if p.is_file()) == before
    assert not (work / "m.tif").exists()


def test_incomplete_cache_is_never_taken_as_finished(samscope, library, reference, work):
    """A cache with pieces not yet computed (an interrupted run) is refused without the image
    and completed with it."""
    import zarr

    from samscope.embeddings import load_embeddings

    cache = work / "c.zarr"
    shutil.copytree(reference / "ref.zarr", cache)
    done = zarr.open_group(str(cache), mode="r+")["done"]
    done[0, 2:] = 0
    (cache / "features/c/0/3/0/0/0").unlink()
    with pytest.raises(CacheMismatchError, match="incomplete"):
        load_embeddings(cache)
    expect_ok(samscope("embed", library / "blobs400.tif", "-o", cache))
    assert load_embeddings(cache).get(0, 3).abs().sum() > 0
