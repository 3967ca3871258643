"""The JSON API through Starlette's test client: uploads, the worker, results, zips, edits,
limits, bad files, unsafe names, sessions kept apart, and the access rules."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from tests.web.conftest import BASE_URL, MODEL, NUCLEI, need_web_extra, upload, wait_for

from samscope.web import ServerConfig, create_app

need_web_extra()


@pytest.fixture(scope="module")
def served(tmp_path_factory, one_torch_thread):
    """One app with its worker for the module (the model loads once), and a finished image."""
    from starlette.testclient import TestClient

    data = tmp_path_factory.mktemp("web")
    app = create_app(ServerConfig(data_dir=data))
    with TestClient(app, base_url=BASE_URL) as client:
        sid = client.post("/api/sessions").json()["session"]
        r = upload(client, sid, [("nuclei.tif", NUCLEI.read_bytes())])
        assert r.status_code == 201, r.text
        iid = r.json()["images"][0]["id"]
        done = wait_for(client, sid, iid)
        assert done["state"] == "done", done
        yield client, sid, iid, data


def _client(tmp_path, **config):
    from starlette.testclient import TestClient

    return TestClient(create_app(ServerConfig(data_dir=tmp_path, **config), start_worker=False),
                      base_url=BASE_URL)


def test_page_static_and_info(tmp_path):
    with _client(tmp_path) as c:
        page = c.get("/")
        assert page.status_code == 200 and 'id="drop-zone"' in page.text
        assert 'id="file-input"' in page.text
        assert c.get("/static/app.js").status_code == 200
        for path in ("/static/../../web/app.py", "/static/..%2F..%2Fweb%2Fapp.py",
                     "/static/%2e%2e/%2e%2e/__init__.py"):
            r = c.get(path)
            assert r.status_code == 404 or "create_app" not in r.text, path
        info = c.get("/api/info").json()
        assert info["default_model"] == MODEL and info["models"][0]["name"] == MODEL
        assert "auto" in info["modes"] and info["token_required"] is False


def test_upload_status_results(served):
    client, sid, iid, _ = served
    image = client.get(f"/api/sessions/{sid}/images/{iid}").json()
    assert image["n_objects"] > 3 and image["record"]["mode"] == "ais"
    assert image["record"]["diameter_px"] == 30.0 and image["editable"]
    m = client.get(f"/api/sessions/{sid}/images/{iid}/metrics").json()
    row = m["images"][0]
    assert row["n_objects"] == image["n_objects"]
    assert 0 < row["confluency"] < 1 and "mean_neighbours" in row and "mean_area_um2" in row
    assert len(m["objects"]["rows"]) == image["n_objects"] and "area_px" in m["objects"]["columns"]
    session = client.get(f"/api/sessions/{sid}").json()
    assert session["counts"]["done"] >= 1 and session["images"][0]["stem"] == "nuclei"
    job = client.get(f"/api/sessions/{sid}/jobs/{image['job']['id']}").json()
    assert job["done"] and job["diameter"] == 30.0


def test_pngs_match_the_labels(served):
    from PIL import Image

    from samscope.io import read_labels

    client, sid, iid, data = served
    r = client.get(f"/api/sessions/{sid}/images/{iid}/labels.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    rgb = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(np.uint32)
    ids = rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)
    labels = read_labels(next((data / "sessions" / sid / "results").rglob("*_labels.tif")))
    np.testing.assert_array_equal(ids, labels)
    shown = Image.open(io.BytesIO(client.get(f"/api/sessions/{sid}/images/{iid}/image.png")
                                  .content))
    assert shown.size == (labels.shape[1], labels.shape[0])
    overlay = client.get(f"/api/sessions/{sid}/images/{iid}/overlay.png")
    assert overlay.status_code == 200 and overlay.content[:4] == b"\x89PNG"
    assert client.get(f"/api/sessions/{sid}/images/{iid}/image.png?plane=3").status_code == 400


def test_zip_of_one_and_of_all(served, tmp_path):
    from samscope.io import read_image

    client, sid, iid, _ = served
    one = client.get(f"/api/sessions/{sid}/images/{iid}/download")
    assert one.status_code == 200 and one.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(one.content)).namelist()
    for name in ("nuclei_labels.tif", "nuclei_objects.csv", "nuclei_overlay.png",
                 "nuclei_segmentation.json", "report/report.html", "report/images.csv",
                 "report/objects.csv"):
        assert name in names, names
    zipfile.ZipFile(io.BytesIO(one.content)).extract("nuclei_labels.tif", tmp_path)
    px = read_image(tmp_path / "nuclei_labels.tif").pixel_size
    assert px is not None and np.allclose(px[-2:], 645.0)  # the file's pixel size, kept
    every = zipfile.ZipFile(io.BytesIO(client.get(f"/api/sessions/{sid}/download").content))
    assert "nuclei/nuclei_labels.tif" in every.namelist()
    assert "report/report.html" in every.namelist()


def test_click_remove_then_add(served):
    client, sid, iid, _ = served
    base = f"/api/sessions/{sid}/images/{iid}"
    before = client.get(base).json()
    m = client.get(f"{base}/metrics").json()
    cols = m["objects"]["columns"]
    rows = sorted(m["objects"]["rows"], key=lambda r: -r[cols.index("area_px")])
    target = rows[0]  # the largest object: a clear target for one point
    oid = target[cols.index("id")]
    y, x = target[cols.index("centroid_y_px")], target[cols.index("centroid_x_px")]
    gone = client.delete(f"{base}/objects/{oid}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["edit"]["n_objects"] == before["n_objects"] - 1
    again = client.post(f"{base}/objects", json={"y": y, "x": x})
    assert again.status_code == 200, again.text
    edit = again.json()["edit"]
    assert edit["n_objects"] == before["n_objects"] and edit["area"] > 100
    assert again.json()["version"] == before["version"] + 2
    after = client.get(f"{base}/metrics").json()
    assert len(after["objects"]["rows"]) == before["n_objects"]  # the table updated
    record = client.get(base).json()["record"]
    assert [e["action"] for e in record["edits"]] == ["remove", "add"]
    on_object = client.post(f"{base}/objects", json={"y": y, "x": x})
    assert on_object.status_code == 400 and "already" in on_object.json()["error"]
    assert client.delete(f"{base}/objects/9999").status_code == 400
    assert client.post(f"{base}/objects", json={"y": -5, "x": 1}).status_code == 400


def test_limits(tmp_path, nuclei_bytes):
    with _client(tmp_path, max_files=2, max_file_mb=0.05, max_upload_mb=1.0) as c:
        sid = c.post("/api/sessions").json()["session"]
        many = upload(c, sid, [(f"a{i}.tif", b"II*\x00") for i in range(3)])
        assert many.status_code == 400 and "at most 2" in many.json()["error"]
        big = upload(c, sid, [("big.tif", nuclei_bytes)])  # 69 kB > 0.05 MiB
        assert big.status_code == 400
        assert "limit" in big.json()["rejected"][0]["reason"]
        huge = upload(c, sid, [("huge.tif", b"\0" * (2 << 20))])
        assert huge.status_code == 413 and "limit" in huge.json()["error"]
        assert not list((tmp_path / "sessions" / sid).rglob("*.tif"))


def test_bad_files_and_options(tmp_path, nuclei_bytes):
    with _client(tmp_path) as c:
        sid = c.post("/api/sessions").json()["session"]
        r = upload(c, sid, [("notes.tif", b"hello, not an image"),
                            ("cut.tif", nuclei_bytes[:12]), ("ok.tif", nuclei_bytes)])
        assert r.status_code == 201, r.text
        reasons = {x["name"]: x["reason"] for x in r.json()["rejected"]}
        assert "by its content" in reasons["notes.tif"]
        assert "cannot be read" in reasons["cut.tif"] and "/" not in reasons["cut.tif"]
        assert [im["stem"] for im in r.json()["images"]] == ["ok"]
        none = upload(c, sid, [("a.txt", b"text")])
        assert none.status_code == 400 and none.json()["rejected"]
        assert c.post(f"/api/sessions/{sid}/jobs", data={"model": MODEL}).status_code == 400
        for fields in ({"model": "/etc/passwd"}, {"model": "vit_b"}, {"mode": "magic"},
                       {"diameter": "big"}, {"diameter": "-3"}, {"settings": "[1]"}):
            bad = upload(c, sid, [("x.tif", nuclei_bytes)], **fields)
            assert bad.status_code == 400, fields
            assert bad.json()["error"], fields


def test_unsafe_names_stay_in_the_session(tmp_path, nuclei_bytes):
    with _client(tmp_path) as c:
        sid = c.post("/api/sessions").json()["session"]
        names = ["../../evil.tif", "/etc/cron.d/x.tif", "..\\..\\win.tif", "a/../../b.tif",
                 "..", "nuclei.tif", "nuclei.tif", "ünï cødé.tif"]
        r = upload(c, sid, [(n, nuclei_bytes) for n in names])
        assert r.status_code == 201, r.text
        stems = [im["stem"] for im in r.json()["images"]]
        assert stems == ["evil", "x", "win", "b", "image", "nuclei", "nuclei_2", "uni_c_de"]
        session = (tmp_path / "sessions" / sid).resolve()
        written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".tif"]
        assert len(written) == len(names)
        assert all(session in p.resolve().parents for p in written)
        assert not (tmp_path.parent / "evil.tif").exists()


def test_sessions_are_kept_apart(served, tmp_path):
    client, sid, iid, _ = served
    other = client.post("/api/sessions").json()["session"]
    assert client.get(f"/api/sessions/{other}/images/{iid}").status_code == 404
    assert client.get(f"/api/sessions/{other}/images/{iid}/download").status_code == 404
    assert client.get(f"/api/sessions/{other}").json()["images"] == []
    assert client.get("/api/sessions/nosuchsessionid123").status_code == 404
    assert client.get("/api/sessions/..%2F..%2Fetc").status_code == 404


def test_token_when_bound_off_localhost(tmp_path):
    from starlette.testclient import TestClient

    config = ServerConfig(data_dir=tmp_path, host="0.0.0.0").with_token()
    assert config.token and config.needs_token
    app = create_app(config, start_worker=False)
    with TestClient(app, base_url="http://lab-workstation:8000") as c:
        assert c.get("/api/info").status_code == 401
        assert c.get("/").status_code == 401
        assert c.get("/api/info", headers={"Authorization": "Bearer wrong-token"}).status_code \
            == 401
        ok = c.get("/api/info", headers={"Authorization": f"Bearer {config.token}"})
        assert ok.status_code == 200 and ok.json()["token_required"]
        page = c.get(f"/?token={config.token}")
        assert page.status_code == 200 and "samscope_token" in page.headers["set-cookie"]
        assert c.post("/api/sessions").status_code == 201  # the cookie carries the token


def test_localhost_host_and_origin_rules(tmp_path):
    with _client(tmp_path) as c:
        assert c.get("/api/info", headers={"Host": "evil.example"}).status_code == 403
        cross = c.post("/api/sessions", headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
        same = c.post("/api/sessions", headers={"Origin": BASE_URL})
        assert same.status_code == 201


def test_failed_image_has_its_reason(tmp_path, nuclei_bytes):
    from starlette.testclient import TestClient

    app = create_app(ServerConfig(data_dir=tmp_path, max_pixels=1000))
    with TestClient(app, base_url=BASE_URL) as c:
        sid = c.post("/api/sessions").json()["session"]
        iid = upload(c, sid, [("n.tif", nuclei_bytes)]).json()["images"][0]["id"]
        failed = wait_for(c, sid, iid, timeout=60)
        assert failed["state"] == "failed" and "at most 1,000" in failed["error"]
        assert c.get(f"/api/sessions/{sid}/images/{iid}/metrics").status_code == 409


def test_restart_resumes_unfinished(tmp_path, nuclei_bytes):
    from starlette.testclient import TestClient

    from samscope.web.store import Store

    with _client(tmp_path) as c:  # no worker: the images stay queued
        sid = c.post("/api/sessions").json()["session"]
        ids = [im["id"] for im in upload(c, sid, [("a.tif", nuclei_bytes),
                                                  ("b.tif", nuclei_bytes)]).json()["images"]]
    store = Store(tmp_path / "samscope-web.sqlite")
    assert store.claim_next().id == ids[0]  # a server that died while processing it
    assert store.image(sid, ids[0]).state == "processing"
    app = create_app(ServerConfig(data_dir=tmp_path))
    with TestClient(app, base_url=BASE_URL) as c:
        states = [wait_for(c, sid, i)["state"] for i in ids]
    assert states == ["done", "done"]


def test_dropped_folders_become_conditions(tmp_path, nuclei_bytes):
    with _client(tmp_path) as c:
        sid = c.post("/api/sessions").json()["session"]
        r = c.post(f"/api/sessions/{sid}/jobs", data={"paths": ["plate/control/a.tif",
                                                                "plate/treated/a.tif", "b.tif"]},
                   files=[("files", (n, nuclei_bytes, "image/tiff"))
                          for n in ("a.tif", "a.tif", "b.tif")])
        assert r.status_code == 201, r.text
        got = [(im["stem"], im["condition"]) for im in r.json()["images"]]
        assert got == [("a", "control"), ("a_2", "treated"), ("b", "all")]


def test_a_stack_plane_by_plane(served):
    import tifffile

    client, sid, _, _ = served
    plane = tifffile.imread(NUCLEI)[:128, :128]
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.stack([plane, plane]), metadata={"axes": "ZYX"})
    r = upload(client, sid, [("stack.tif", buf.getvalue())])
    assert r.status_code == 201, r.text
    iid = r.json()["images"][0]["id"]
    done = wait_for(client, sid, iid)
    assert done["state"] == "done" and done["n_planes"] == 2, done
    assert not done["editable"]
    base = f"/api/sessions/{sid}/images/{iid}"
    assert client.get(f"{base}/labels.png?plane=1").status_code == 200
    assert client.get(f"{base}/image.png?plane=1").status_code == 200
    assert client.get(f"{base}/labels.png?plane=2").status_code == 400
    m = client.get(f"{base}/metrics").json()
    assert len(m["images"]) >= 1 and m["objects"]["rows"]
    refused = client.post(f"{base}/objects", json={"y": 5, "x": 5})
    assert refused.status_code == 400 and "2-D" in refused.json()["error"]
