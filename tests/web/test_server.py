"""The server's settings, what ``samscope serve`` prints, the upload name rules and the store."""

from __future__ import annotations

import pytest

from samscope.errors import InputError
from samscope.web.config import ServerConfig, is_loopback
from samscope.web.server import address_lines
from samscope.web.store import Store
from samscope.web.uploads import condition_of, safe_child, sanitise_name, sniff_kind


def test_localhost_needs_no_token(tmp_path):
    config = ServerConfig(data_dir=tmp_path).with_token()
    assert config.token is None and not config.needs_token
    lines = address_lines(config)
    assert lines[0] == ("samscope web app: http://localhost:8000/", False)
    assert not any(warn for _, warn in lines)


def test_other_host_warns_and_prints_the_token(tmp_path):
    config = ServerConfig(data_dir=tmp_path, host="0.0.0.0", port=8080).with_token()
    assert config.needs_token and len(config.token) >= 24
    lines = address_lines(config)
    warnings = [line for line, warn in lines if warn]
    assert warnings[0].startswith("warning: serving on 0.0.0.0")
    assert any(config.token in line for line in warnings)
    assert any(f"http://0.0.0.0:8080/?token={config.token}" in line for line, _ in lines)
    assert ServerConfig(data_dir=tmp_path, host="0.0.0.0").with_token().token != config.token


@pytest.mark.parametrize("host,expected", [("127.0.0.1", True), ("::1", True),
                                           ("localhost", True), ("[::1]", True),
                                           ("0.0.0.0", False), ("192.168.1.5", False),
                                           ("lab.example.org", False)])
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


@pytest.mark.parametrize("fields", [{"port": 70000}, {"max_files": 0}, {"max_upload_mb": -1},
                                    {"token": "short"}, {"threads": 0}])
def test_bad_settings(tmp_path, fields):
    with pytest.raises(InputError):
        ServerConfig(data_dir=tmp_path, **fields)


def test_serve_is_a_command():
    from typer.testing import CliRunner

    from samscope.cli.main import build_app

    result = CliRunner().invoke(build_app(), ["serve", "--help"])
    assert result.exit_code == 0 and "--host" in result.output and "token" in result.output


def test_serve_refuses_an_unknown_model(tmp_path, capsys):
    from samscope.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--data", str(tmp_path), "--model", "no-such-model"])
    assert exit_info.value.code == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert not (tmp_path / "samscope-web.sqlite").exists()


def test_names_and_kinds(tmp_path):
    assert sanitise_name("../../x/../evil name!.PNG") == ("evil_name", False)
    assert sanitise_name("stack.ome.tiff") == ("stack", True)
    assert sanitise_name("...") == ("image", False)
    assert sanitise_name("a" * 300 + ".tif")[0] == "a" * 80
    assert sniff_kind(b"\xff\xd8\xff\xe0") == "jpeg" and sniff_kind(b"MM\x00*") == "tiff"
    assert sniff_kind(b"<html>") is None
    assert condition_of("drop/Hypoxia 1%/c.tif") == "Hypoxia_1"
    assert safe_child(tmp_path, "ok.tif") == tmp_path / "ok.tif"
    for bad in ("../x", "/etc/passwd", "a/b", "..", "", "a\\b"):
        with pytest.raises(InputError):
            safe_child(tmp_path, bad)


def test_store_claims_in_order_and_requeues(tmp_path):
    store = Store(tmp_path / "db.sqlite")
    sid = store.create_session()
    images = [{"stem": f"s{i}", "name": f"s{i}.tif", "filename": f"s{i}.tif",
               "condition": "all", "size": 1} for i in range(3)]
    job, rows = store.create_job(sid, model="m", mode="auto", diameter=None, settings={},
                                 images=images)
    assert [r.state for r in rows] == ["queued"] * 3 and job.model == "m"
    first = store.claim_next()
    assert first.id == rows[0].id and store.image(sid, first.id).state == "processing"
    store.finish(first.id, n_objects=4, n_planes=1, seconds=0.5)
    second = store.claim_next()
    store.fail(second.id, "bad image")
    third = store.claim_next()
    assert store.claim_next() is None
    assert store.requeue_unfinished() == 1 and store.image(sid, third.id).state == "queued"
    assert store.counts() == {"queued": 1, "processing": 0, "done": 1, "failed": 1}
    assert store.image("another-session-id", first.id) is None
    with pytest.raises(Exception, match="UNIQUE"):  # a stem twice in a session: nothing added
        store.create_job(sid, model="m", mode="auto", diameter=None, settings={},
                         images=images[:1])
    assert len(store.images(sid)) == 3
