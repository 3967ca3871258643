"""The model commands: a user's own checkpoint imported under a new name works offline from
then on (in new processes), ``models info PATH``, and the recipe ``--name`` bug."""

from __future__ import annotations

import json
import shutil

import pytest
import tifffile
from _rel import expect_error, expect_ok


@pytest.fixture()
def env(work):
    return {"SAMSCOPE_CACHE_DIR": work / "cache"}


@pytest.fixture()
def mine(work):
    from samscope.models.registry import get_card, shipped_path

    path = work / "my-model.pt"
    shutil.copy(shipped_path(get_card("samscope-lm")), path)
    return path


def test_import_under_a_new_name_then_use_it_offline(samscope, library, work, env, mine):
    res = samscope("models", "import", mine, "--name", "my-nuclei", env=env)
    expect_ok(res, "registered", "my-nuclei", "xxh128:")
    mine.unlink()  # the registered copy is used, not the original file
    expect_ok(samscope("models", "list", env=env), "my-nuclei")
    expect_ok(samscope("models", "info", "my-nuclei", env=env), "samscope_compact", "present")
    expect_ok(samscope("prompt", library / "cells.tif", "-p", "40,50", "-o", "a.tif", "-m",
                       "my-nuclei", env=env))  # fmt: skip
    expect_ok(samscope("prompt", library / "cells.tif", "-p", "40,50", "-o", "b.tif", "-m",
                       "samscope-lm", env=env))  # fmt: skip
    assert (tifffile.imread(work / "a.tif") == tifffile.imread(work / "b.tif")).all()
    record = json.loads((work / "cache/models/user-models.json").read_text())
    assert record["models"]["my-nuclei"]["card"]["known_hash"].startswith("xxh128:")


def test_import_refusals(samscope, library, work, env, mine):
    expect_ok(samscope("models", "import", mine, "--name", "my-nuclei", env=env))
    expect_error(samscope("models", "import", mine, "--name", "my-nuclei", env=env), "--replace")
    expect_ok(samscope("models", "import", mine, "--name", "my-nuclei", "--replace", env=env))
    expect_error(samscope("models", "import", mine, "--name", "vit_b", env=env),
                 "is not a file of model 'vit_b'", "new name")  # fmt: skip
    expect_error(samscope("models", "import", mine, "--name", "../evil", env=env), "cannot register")
    expect_error(samscope("models", "import", mine, "--name", "x.pt", env=env), "cannot register")
    expect_error(samscope("models", "import", library / "random.pt", "--name", "junk", env=env),
                 "not a model checkpoint")  # fmt: skip
    expect_error(samscope("models", "import", library / "not_sam.pt", "--name", "junk", env=env),
                 "unrecognised state dict")  # fmt: skip
    expect_error(samscope("models", "import", library / "missing.pt", "--name", "junk", env=env),
                 "no such file")  # fmt: skip
    res = samscope("models", "list", env=env)
    expect_ok(res, "my-nuclei")
    assert "junk" not in res.out
    assert sorted(p.name for p in (work / "cache/models").iterdir()) == ["my-nuclei.pt", "user-models.json"]


def test_damaged_or_missing_imported_model(samscope, library, work, env, mine):
    expect_ok(samscope("models", "import", mine, "--name", "my-nuclei", env=env))
    copy = work / "cache/models/my-nuclei.pt"
    data = bytearray(copy.read_bytes())
    data[-100] ^= 0xFF
    copy.write_bytes(bytes(data))
    args = ("prompt", library / "cells.tif", "-p", "40,50", "-o", "m.tif", "-m", "my-nuclei")
    expect_error(samscope(*args, env=env), "damaged or was replaced", "--replace")
    copy.unlink()
    expect_error(samscope(*args, env=env), "import it again")
    (work / "cache/models/user-models.json").write_text("{not json")
    expect_error(samscope(*args, env=env), "record of imported models", "damaged")


def test_models_info_of_a_checkpoint_path(samscope, work, mine, library):
    expect_ok(samscope("models", "info", mine), "samscope_compact", "xxh128:", "my-model.pt")
    expect_error(samscope("models", "info", library / "random.pt"), "not a model checkpoint")
    expect_error(samscope("models", "info", library / "missing.pt"), "not found")
    expect_error(samscope("models", "info", "nope"), "unknown model")


def test_train_recipe_with_name(samscope, work):
    res = samscope("train", "--recipe", "tiny_nuclei_cpu", "--name", "foo", "--out-dir", "runs/foo",
                   "--check")  # fmt: skip
    expect_ok(res, 'name = "foo"', "# ok:")
    assert not (work / "runs").exists()
