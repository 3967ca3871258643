"""Bad and unusual inputs through the ``samscope`` command line: each ends as a clear error or a
correct result — never a traceback, never a silent wrong result, never a changed input.

Each row is one case: a command line (``{lib}`` is the shared input folder, outputs go to the
case's own folder) and how it must end: ``ok(...)`` — exit 0 and the fragments on stdout — or
``err(...)`` — exit 2 (``rc=`` otherwise), an ``error:`` line holding the fragments, no
traceback — with, for a failed ``embed``, no cache left behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import tifffile
from _rel import expect_error, expect_ok, files_in


@dataclass(frozen=True)
class Expect:
    kind: str  # "ok" or "error"
    fragments: tuple[str, ...] = ()
    rc: int = 2
    planes: int | None = None  # embed: planes the cache must hold
    pixels: tuple[int, int] | None = None  # prompt: the mask's shape
    extra: dict = field(default_factory=dict)


def ok(*fragments, planes=None, pixels=None):
    return Expect("ok", fragments, 0, planes, pixels)


def err(*fragments, rc=2):
    return Expect("error", fragments, rc)


EMBED = [  # (file in the library, expectation of `samscope embed FILE -o out.zarr`)
    ("cells.tif", ok("1 plane(s)", planes=1)),
    ("blobs400.tif", ok("4 tile(s)", planes=1)),
    ("cells_zlib.tif", ok(planes=1)),
    ("cells_bigendian.tif", ok(planes=1)),
    ("cells.ome.tif", ok(planes=1)),
    ("cells.npy", ok(planes=1)),
    ("cells_gray8.png", ok(planes=1)),
    ("cells_16bit.png", ok(planes=1)),
    ("cells_rgb.png", ok(planes=1)),
    ("cells_rgba.png", ok(planes=1)),
    ("cells.jpg", ok(planes=1)),
    ("cells.bmp", ok(planes=1)),
    ("stack.tif", ok("3 plane(s)", planes=3)),
    ("planar_rgb16.tif", ok("1 plane(s)", planes=1)),  # the file says RGB (planar)
    ("tyx.tif", ok("2 plane(s)", planes=2)),
    ("linked.tif", ok(planes=1)),
    ("cells with space é.tif", ok(planes=1)),
    ("cells.zarr", ok(planes=1)),
    ("negative.tif", ok(planes=1)),
    ("zeros.tif", ok(planes=1)),
    ("constant_float.tif", ok(planes=1)),
    ("bool.npy", ok(planes=1)),
    ("uint32.tif", ok(planes=1)),
    ("int8.tif", ok(planes=1)),
    ("float16.tif", ok(planes=1)),
    ("float64.tif", ok(planes=1)),
    ("int64_huge.npy", ok(planes=1)),
    ("huge1e300.tif", ok(planes=1)),  # normalised in float64: see test_float64_extremes
    ("tiny1e-300.tif", ok(planes=1)),
    ("one_pixel.tif", ok(planes=1)),
    ("one_row.tif", ok(planes=1)),
    ("two_by_two.tif", ok(planes=1)),
    ("thin_3x500.tif", ok("3 tile(s)", planes=1)),
    ("nan.tif", err("nan.tif", "1 NaN or infinite")),
    ("inf.tif", err("inf.tif", "NaN or infinite")),
    ("neginf.tif", err("neginf.tif", "NaN or infinite")),
    ("allnan.tif", err("allnan.tif", "4096 NaN")),
    ("huge1e39.tif", ok(planes=1)),
    ("complex.npy", err("complex64 is not an image type")),
    ("strings.npy", err("is not an image type")),
    ("five_d.npy", err("cannot tell the axes", "5-D")),
    ("four_d_5ch.npy", err("cannot tell the axes")),
    ("yxc_2ch.tif", err("2 channels")),
    ("empty_0x10.npy", err("empty")),
    ("scalar.npy", err("at least 2 dimensions")),
    ("empty.tif", err("corrupted, truncated or is not a TIFF")),
    ("empty.png", err("corrupted, truncated or is not a PNG")),
    ("random.tif", err("not a TIFF")),
    ("random.png", err("not a PNG")),
    ("text.tif", err("not a TIFF")),
    ("truncated.tif", err("truncated.tif", "damaged or truncated")),
    ("truncated.png", err("truncated")),
    ("truncated.npy", err("truncated")),
    ("image.xyz", err("unknown image format '.xyz'")),
    ("no_suffix", err("unknown image format")),
    ("folder.tif", err("is a folder")),
    ("two_arrays.zarr", err("holds 2 arrays")),
    ("missing.tif", err("no such file")),
    ("dangling.tif", err("no such file")),
]


@pytest.mark.parametrize(("name", "expect"), EMBED, ids=[n for n, _ in EMBED])
def test_embed(samscope, library, work, name, expect):
    res = samscope("embed", library / name, "-o", "out.zarr")
    if expect.kind == "error":
        expect_error(res, *expect.fragments, rc=expect.rc)
        assert files_in(work) == [], "a failed embed must leave nothing behind"
        return
    expect_ok(res, "wrote out.zarr", *expect.fragments)
    from samscope.embeddings import load_embeddings

    emb = load_embeddings(work / "out.zarr")  # complete, checksummed, every piece readable
    assert emb.n_planes == expect.planes
    for p in range(emb.n_planes):
        for t in range(len(emb.tiles)):
            assert np.isfinite(emb.get(p, t).numpy()).all()


P = ("prompt", "{lib}/cells.tif", "-o", "m.tif")
PROMPT = [  # (id, arguments, expectation)
    ("point", P + ("-p", "40,50"), ok("wrote m.tif", pixels=(120, 160))),
    ("point-negative-label", P + ("-p", "40,50", "-l", "0"), ok(pixels=(120, 160))),
    ("multimask", P + ("-p", "40,50", "--multimask"), ok(pixels=(120, 160))),
    ("box-trailing-semicolon", P + ("-b", "10,10,60,70;"), ok(pixels=(120, 160))),
    ("point-trailing-semicolon", P + ("-p", "40,50;"), ok(pixels=(120, 160))),
    ("two-boxes", P + ("-b", "10,10,60,70;70,80,110,150"), ok("2:", pixels=(120, 160))),
    ("box-and-point", P + ("-b", "10,10,60,70", "-p", "40,50"), ok(pixels=(120, 160))),
    ("tiled", P + ("-p", "40,50", "--tile-shape", "64"), ok(pixels=(120, 160))),
    ("stack-plane-2", ("prompt", "{lib}/stack.tif", "-o", "m.tif", "-p", "40,50", "--plane", "2"),
     ok(pixels=(120, 160))),
    ("rgba", ("prompt", "{lib}/cells_rgba.png", "-o", "m.png", "-p", "40,50"), ok("wrote m.png")),
    ("npy-output", P[:3] + ("m.npy", "-p", "40,50"), ok("wrote m.npy")),
    ("point-outside", P + ("-p", "500,5"), err("outside the image")),
    ("point-negative", P + ("-p", "-3,5"), err("outside the image")),
    ("point-huge", P + ("-p", "1e30,5"), err("outside the image")),
    ("point-nan", P + ("-p", "nan,5"), err("NaN or infinite")),
    ("point-inf", P + ("-p", "inf,5"), err("NaN or infinite")),
    ("point-text", P + ("-p", "a,b"), err("expected numbers")),
    ("point-three-numbers", P + ("-p", "1,2,3"), err("needs 2 numbers")),
    ("point-one-number", P + ("-p", "4"), err("needs 2 numbers")),
    ("point-empty", P + ("-p", ""), err("give --points and/or --boxes")),
    ("no-prompt", P, err("give --points and/or --boxes")),
    ("labels-count", P + ("-p", "40,50", "-l", "1,0"), err("1 points but 2 labels")),
    ("labels-value", P + ("-p", "40,50", "-l", "2"), err("must be 1 (positive) or 0")),
    ("labels-text", P + ("-p", "40,50", "-l", "x"), err("expected integers")),
    ("box-inverted", P + ("-b", "60,70,10,10"), err("zero or negative area")),
    ("box-flat", P + ("-b", "10,10,10,50"), err("zero or negative area")),
    ("box-outside", P + ("-b", "500,500,600,600"), err("outside the image")),
    ("box-five-numbers", P + ("-b", "1,2,3,4,5"), err("needs 4 numbers")),
    ("boxes-with-points", P + ("-b", "10,10,60,70;70,80,110,150", "-p", "40,50"),
     err("single box only")),
    ("plane-out-of-range", P + ("-p", "40,50", "--plane", "3"), err("out of range")),
    ("plane-negative", P + ("-p", "40,50", "--plane", "-1"), err("out of range")),
    ("stack-plane-3", ("prompt", "{lib}/stack.tif", "-o", "m.tif", "-p", "40,50", "--plane", "3"),
     err("has 3 plane(s)")),
    ("tile-text", P + ("-p", "40,50", "--tile-shape", "abc"), err("tile shape")),
    ("tile-zero", P + ("-p", "40,50", "--tile-shape", "0"), err("positive integers")),
    ("halo-negative", P + ("-p", "40,50", "--tile-shape", "64", "--halo", "-1"), err("halo")),
    ("halo-alone", P + ("-p", "40,50", "--halo", "8"), err("halo given without tile_shape")),
    ("axes-wrong-count", P + ("-p", "40,50", "--axes", "ZYX"), err("3 dimension(s)")),
    ("axes-bad-letters", P + ("-p", "40,50", "--axes", "QQ"), err("unknown axis letter")),
    ("device-unknown", P + ("-p", "40,50", "--device", "quantum"), err("unknown device")),
    ("device-cuda-none", P + ("-p", "40,50", "--device", "cuda:7"), err("cuda")),
    ("output-suffix", P[:3] + ("m.jpg2", "-p", "40,50"), err("unknown format '.jpg2'")),
    ("output-no-suffix", P[:3] + ("mask", "-p", "40,50"), err("unknown format")),
    ("image-missing", ("prompt", "{lib}/missing.tif", "-o", "m.tif", "-p", "4,4"), err("no such file")),
    ("image-nan", ("prompt", "{lib}/nan.tif", "-o", "m.tif", "-p", "4,4"), err("nan.tif", "NaN")),
    ("image-5d", ("prompt", "{lib}/five_d.npy", "-o", "m.tif", "-p", "4,4"), err("axes")),
    ("image-1x1", ("prompt", "{lib}/one_pixel.tif", "-o", "m.tif", "-p", "0,0"),
     ok("1:", pixels=(1, 1))),
    ("image-1x1-outside", ("prompt", "{lib}/one_pixel.tif", "-o", "m.tif", "-p", "1,1"),
     err("outside the image")),
]


@pytest.mark.parametrize(("args", "expect"), [(a, e) for _, a, e in PROMPT], ids=[i for i, _, _ in PROMPT])
def test_prompt(samscope, library, work, args, expect):
    res = samscope(*(a.format(lib=library) for a in args))
    if expect.kind == "error":
        expect_error(res, *expect.fragments, rc=expect.rc)
        assert files_in(work) == [], "a failed prompt must write nothing"
        return
    expect_ok(res, *expect.fragments)
    if expect.pixels is not None:
        mask = tifffile.imread(work / "m.tif")
        assert mask.shape == expect.pixels
        if "-p" in args and "40,50" in args and "-l" not in args and "-b" not in args:
            assert mask[40, 50] == 1, "the object under the positive point is segmented"
        if "-b" in args:
            assert mask.max() == args[args.index("-b") + 1].rstrip(";").count(";") + 1


MODELS = [  # --model / --checkpoint values for `samscope prompt cells.tif -p 40,50 -o m.tif`
    ("unknown-name", ("-m", "nope"), err("unknown model 'nope'", "registered models")),
    ("random-bytes", ("-m", "{lib}/random.pt"), err("is not a model checkpoint")),
    ("empty-file", ("-m", "{lib}/empty.pt"), err("is not a model checkpoint")),
    ("text-file", ("-m", "{lib}/text.pt"), err("is not a model checkpoint")),
    ("not-sam", ("-m", "{lib}/not_sam.pt"), err("unrecognised state dict")),
    ("truncated", ("-m", "{lib}/truncated.pt"), err("damaged or incomplete")),
    ("folder", ("-m", "{lib}/model_folder.pt"), err("not found")),
    ("missing-file", ("-m", "{lib}/missing.pt"), err("not found")),
    ("not-cached", ("-m", "vit_b"), err("not in the cache", "samscope models import")),
    ("checkpoint-random", ("--checkpoint", "{lib}/random.pt"), err("is not a model checkpoint")),
    ("checkpoint-missing", ("--checkpoint", "{lib}/missing.pt"), err("not found")),
    ("checkpoint-with-path", ("-m", "{lib}/random.pt", "--checkpoint", "{lib}/random.pt"),
     err("")),
    ("image-as-model", ("-m", "{lib}/cells.tif"), err("is not a model checkpoint")),
]


@pytest.mark.parametrize(("args", "expect"), [(a, e) for _, a, e in MODELS], ids=[i for i, _, _ in MODELS])
def test_model_files(samscope, library, work, args, expect):
    res = samscope("prompt", library / "cells.tif", "-p", "40,50", "-o", "m.tif",
                   *(a.format(lib=library) for a in args))  # fmt: skip
    expect_error(res, *expect.fragments, rc=expect.rc)
    assert "weights_only=False" not in res.err  # never the advice to unpickle code
    assert files_in(work) == []


USAGE = [  # command lines that are wrong as command lines
    ("no-command", (), 2, "Usage"),
    ("unknown-command", ("nonsense",), 2, "No such command"),
    ("unknown-option", ("prompt", "--bogus"), 2, "No such option"),
    ("missing-output", ("embed", "{lib}/cells.tif"), 2, "Missing option"),
    ("missing-image", ("embed", "-o", "x.zarr"), 2, "Missing argument"),
    ("int-option-text", ("embed", "{lib}/cells.tif", "-o", "c.zarr", "--batch-size", "x"), 2,
     "valid integer"),
    ("train-int-flag-text", ("train", "--recipe", "tiny_nuclei_cpu", "--max-steps", "abc"), 2,
     "valid integer"),
    ("segment-no-inputs", ("segment",), 2, "Missing"),
    ("models-no-sub", ("models", "nope"), 2, "No such command"),
]


@pytest.mark.parametrize(("args", "rc", "fragment"), [(a, r, f) for _, a, r, f in USAGE],
                         ids=[i for i, *_ in USAGE])  # fmt: skip
def test_usage(samscope, library, work, args, rc, fragment):
    res = samscope(*(a.format(lib=library) for a in args))
    assert "Traceback" not in res.text, str(res)
    assert res.rc == rc and fragment.lower() in res.text.lower(), str(res)
    assert files_in(work) == []


CONFIGS = [  # samscope train ... --check
    ("bad-syntax", ("{lib}/bad_syntax.toml",), err("not valid TOML")),
    ("unknown-section", ("{lib}/unknown_section.toml",), err("unknown section(s) 'nonsense'")),
    ("unknown-field", ("{lib}/unknown_field.toml",), err("unknown field(s) 'not_a_field'")),
    ("wrong-type", ("{lib}/wrong_type.toml",), err("lr must be a number")),
    ("field-in-wrong-section", ("{lib}/negative_steps.toml",), err("unknown field(s) 'max_steps'")),
    ("missing-file", ("{lib}/missing.toml",), err("not found")),
    ("unknown-recipe", ("--recipe", "nope"), err("unknown recipe 'nope'")),
    ("config-and-recipe", ("{lib}/bad_syntax.toml", "--recipe", "tiny_nuclei_cpu"),
     err("either CONFIG or --recipe")),
    ("recipe-without-data", ("--recipe", "microsam_finetune"), err("no training data")),
    ("image-as-config", ("{lib}/cells.tif",), err("")),
]


@pytest.mark.parametrize(("args", "expect"), [(a, e) for _, a, e in CONFIGS], ids=[i for i, _, _ in CONFIGS])
def test_configs(samscope, library, work, args, expect):
    res = samscope("train", *(a.format(lib=library) for a in args), "--check")
    expect_error(res, *expect.fragments, rc=expect.rc)


def test_float64_extremes_give_the_embeddings_of_the_rescaled_image(samscope, library, work):
    """1e300 and 1e-300 (float64) are normalised in float64: no overflow, the right features."""
    from samscope.embeddings import load_embeddings

    base = tifffile.imread(library / "huge1e300.tif") / 1e300
    tifffile.imwrite(work / "base.tif", base.astype(np.float32))
    for name in ("huge1e300.tif", "base.tif"):
        expect_ok(samscope("embed", library / name if name != "base.tif" else work / name,
                           "-o", f"{name}.zarr"))  # fmt: skip
    big = load_embeddings(work / "huge1e300.tif.zarr").get().numpy()
    ref = load_embeddings(work / "base.tif.zarr").get().numpy()
    assert np.abs(big - ref).max() < 1e-2 * np.abs(ref).max()


MEMORY = [  # an image that cannot fit fails at once, saying so (SAMSCOPE_MEMORY_LIMIT stands in
    # for a small machine; the same check reads the system's available memory)
    ("embed", ("embed", "{lib}/blobs400.tif", "-o", "c.zarr"), "100k"),
    ("prompt", ("prompt", "{lib}/blobs400.tif", "-p", "100,100", "-o", "m.tif"), "1M"),
    ("segment", ("segment", "{lib}/blobs400.tif", "-o", "out"), "1M"),
]


@pytest.mark.parametrize(("args", "limit"), [(a, m) for _, a, m in MEMORY], ids=[i for i, *_ in MEMORY])
def test_too_big_for_memory_fails_early(samscope, library, work, args, limit):
    res = samscope(*(a.format(lib=library) for a in args), env={"SAMSCOPE_MEMORY_LIMIT": limit})
    expect_error(res, "needs about", "GiB of memory", "available")
    assert "embeddings:" not in res.err or "0/" in res.err  # before any tile was computed
    assert files_in(work) == []


def test_memory_limit_setting_is_checked(samscope, library, work):
    res = samscope("embed", library / "cells.tif", "-o", "c.zarr", env={"SAMSCOPE_MEMORY_LIMIT": "lots"})
    expect_error(res, "SAMSCOPE_MEMORY_LIMIT")
