"""The page and the JSON API under ``/api/`` (the page uses nothing else; scripts can too).

======  ==============================================  =========================================
GET     ``/``                                           the page
GET     ``/api/info``                                   models, modes, limits, queue, worker
POST    ``/api/sessions``                               a new session → ``{"session": ID}``
GET     ``/api/sessions/ID``                            its jobs and images with their states
POST    ``/api/sessions/ID/jobs``                       multipart: ``files`` (+ ``paths``),
                                                        ``model``, ``mode``, ``diameter``
                                                        (px or ``auto``), ``settings`` (JSON)
GET     ``/api/sessions/ID/jobs/JOB``                   one job's images
GET     ``/api/sessions/ID/images/IMG``                 an image: state, record, planes
GET     ``/api/sessions/ID/images/IMG/metrics``         per-image and per-object tables
GET     ``/api/sessions/ID/images/IMG/image.png``       the plane shown (``?plane=K``)
GET     ``/api/sessions/ID/images/IMG/labels.png``      label ids packed in RGB (``?plane=K``)
GET     ``/api/sessions/ID/images/IMG/overlay.png``     the pipeline's overlay
POST    ``/api/sessions/ID/images/IMG/objects``         JSON ``{"y": Y, "x": X}``: add an object
DELETE  ``/api/sessions/ID/images/IMG/objects/OBJ``     remove object OBJ
GET     ``/api/sessions/ID/images/IMG/download``        zip of one result (+ its report)
GET     ``/api/sessions/ID/download``                   zip of every finished result + report
======  ==============================================  =========================================

Errors are JSON ``{"error": "one line"}`` with 400 (bad input), 401/403 (access), 404 (no such
session or image: sessions never see each other's), 409 (not finished yet), 413 (too large).

From a script (add ``-H "Authorization: Bearer TOKEN"`` when the server has a token)::

    curl -X POST http://localhost:8000/api/sessions                 # → {"session": "ID", …}
    curl -F files=@a.tif -F files=@b.tif -F diameter=30 http://localhost:8000/api/sessions/ID/jobs
    curl http://localhost:8000/api/sessions/ID                      # poll the states
    curl -o results.zip http://localhost:8000/api/sessions/ID/download
"""

from __future__ import annotations

import dataclasses
import json
import threading

from samscope.errors import InputError
from samscope.web.jobs import (
    JOB_MODES,
    IncomingFile,
    accept_files,
    check_count,
    parse_options,
    session_lock,
)
from samscope.web.sessions import SessionFiles, build_zip, check_id

__all__ = ["error_handlers", "routes"]

_zip_locks: dict[str, threading.Lock] = {}
_zip_guard = threading.Lock()


def _http():
    from starlette.exceptions import HTTPException

    return HTTPException


def _services(request):
    return request.app.state.services


def _session(request) -> tuple[object, str, SessionFiles]:
    s = _services(request)
    sid = request.path_params["sid"]
    try:
        check_id(sid, "session id")
    except InputError:
        raise _http()(404, "no such session") from None
    if not s.store.has_session(sid):
        raise _http()(404, "no such session")
    return s, sid, SessionFiles(s.config.sessions_dir, sid)


def _image(request):
    s, sid, files = _session(request)
    iid = request.path_params["iid"]
    row = s.store.image(sid, iid) if len(iid) <= 64 else None
    if row is None:
        raise _http()(404, "no such image in this session")
    return s, sid, files, row


def _json(data, status: int = 200):
    from starlette.responses import JSONResponse

    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def _image_json(row, sid: str) -> dict:
    base = f"/api/sessions/{sid}/images/{row.id}"
    out = row.as_dict()
    out["urls"] = {"self": base, "metrics": f"{base}/metrics", "image": f"{base}/image.png",
                   "labels": f"{base}/labels.png", "overlay": f"{base}/overlay.png",
                   "download": f"{base}/download"}
    return out


def _job_json(job) -> dict:
    return {"id": job.id, "created": job.created, "model": job.model, "mode": job.mode,
            "diameter": job.diameter, "settings": job.settings}


# pages and info ------------------------------------------------------------------------------

def index(request):
    from starlette.responses import FileResponse

    from samscope.web.app import static_dir

    return FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-cache"})


def info(request):
    from samscope import __version__
    from samscope.models.registry import get_card

    s = _services(request)
    models = []
    for name in s.config.models:
        try:
            card = get_card(name)
        except Exception:  # noqa: BLE001 - a model the registry cannot describe is still listed
            models.append({"name": name, "description": "", "default_mode": "auto",
                           "working_diameter": None})
            continue
        models.append({"name": name, "description": card.description,
                       "default_mode": card.default_mode, "working_diameter":
                       card.working_diameter})
    cfg = s.config
    return _json({
        "version": __version__, "default_model": cfg.model, "models": models,
        "modes": list(JOB_MODES),
        "limits": {"max_upload_mb": cfg.max_upload_mb, "max_file_mb": cfg.max_file_mb,
                   "max_files": cfg.max_files, "max_pixels": cfg.max_pixels},
        "token_required": cfg.needs_token,
        "queue": s.store.counts(),
        "worker": {"alive": s.worker.alive, "current": s.worker.current is not None,
                   "models_loaded": s.pool.loaded()},
    })


# sessions and jobs ---------------------------------------------------------------------------

def create_session(request):
    s = _services(request)
    sid = s.store.create_session()
    return _json({"session": sid, "url": f"/api/sessions/{sid}"}, 201)


def session(request):
    s, sid, _ = _session(request)
    images = s.store.images(sid)
    counts = {k: 0 for k in ("queued", "processing", "done", "failed")}
    for im in images:
        counts[im.state] = counts.get(im.state, 0) + 1
    return _json({"session": sid, "jobs": [_job_json(j) for j in s.store.jobs(sid)],
                  "images": [_image_json(im, sid) for im in images], "counts": counts,
                  "download": f"/api/sessions/{sid}/download"})


def job(request):
    s, sid, _ = _session(request)
    row = s.store.job(request.path_params["jid"])
    if row is None or row.session != sid:
        raise _http()(404, "no such job in this session")
    images = s.store.images(sid, job=row.id)
    return _json({**_job_json(row), "images": [_image_json(im, sid) for im in images],
                  "done": all(im.state in ("done", "failed") for im in images)})


async def _limited_form(request, config):
    from starlette.formparsers import MultiPartException, MultiPartParser

    HTTPException = _http()
    limit = config.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(413, f"upload of {int(length) / 2**20:.1f} MiB is larger than this "
                                 f"server's limit of {config.max_upload_mb:g} MiB")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InputError("send the images as multipart/form-data, field 'files'")

    async def stream():
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise HTTPException(413, f"upload larger than this server's limit of "
                                         f"{config.max_upload_mb:g} MiB")
            yield chunk

    parser = MultiPartParser(request.headers, stream(), max_files=config.max_files,
                             max_fields=2 * config.max_files + 16)
    try:
        return await parser.parse()
    except MultiPartException as err:
        if "too many files" in err.message.lower():
            raise InputError(f"too many files in one upload; this server takes at most "
                             f"{config.max_files}") from None
        raise InputError(f"bad upload: {err.message}") from None


async def create_job(request):
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    s, sid, files = _session(request)
    form = await _limited_form(request, s.config)
    try:
        uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        paths = [str(p) for p in form.getlist("paths")]
        check_count(len(uploads), s.config)
        options = parse_options(s.config, _field(form, "model"), _field(form, "mode"),
                                _field(form, "diameter"), _field(form, "settings"))
        incoming = [IncomingFile(u.filename or "", paths[i] if i < len(paths) else None,
                                 u.file, int(u.size or 0)) for i, u in enumerate(uploads)]
        return await run_in_threadpool(_store_job, s, sid, files, incoming, options)
    finally:
        await form.close()


def _field(form, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _store_job(s, sid: str, files: SessionFiles, incoming, options):
    with session_lock(sid):
        accepted, rejected = accept_files(files, incoming, s.store.taken_stems(sid), s.config)
        if not accepted:
            return _json({"error": "no file of the upload is an image samscope can read",
                          "rejected": rejected}, 400)
        job_row, images = s.store.create_job(
            sid, model=options.model, mode=options.mode, diameter=options.diameter,
            settings=options.settings, images=[dataclasses.asdict(u) for u in accepted])
    s.worker.wake()
    return _json({"job": _job_json(job_row), "images": [_image_json(im, sid) for im in images],
                  "rejected": rejected, "url": f"/api/sessions/{sid}/jobs/{job_row.id}"}, 201)


# one image -----------------------------------------------------------------------------------

def _record(files: SessionFiles, row) -> dict:
    outs = files.outputs(row)
    if not outs.record.is_file():
        return {}
    try:
        doc = json.loads(outs.record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    keep = ("model", "mode", "axes", "pixel_size_nm", "diameter_px", "scale", "n_objects",
            "effective_settings", "edits")
    return {k: doc[k] for k in keep if k in doc}


def image(request):
    s, sid, files, row = _image(request)
    job_row = s.store.job(row.job)
    out = _image_json(row, sid)
    out["job"] = _job_json(job_row)
    out["record"] = _record(files, row) if row.state == "done" else {}
    out["editable"] = row.state == "done" and (row.n_planes or 1) == 1
    return _json(out)


def _need_done(row) -> None:
    if row.state != "done":
        raise _http()(409, f"this image is {row.state}, not done")


def metrics(request):
    from samscope.web.views import metrics as measure

    s, sid, files, row = _image(request)
    _need_done(row)
    return _json({"id": row.id, "version": row.version,
                  **measure(files.results(row.stem), model=s.store.job(row.job).model)})


def _plane(request) -> int:
    text = request.query_params.get("plane", "0")
    if not text.isdigit():
        raise InputError("plane must be a whole number")
    return int(text)


def _png(data: bytes):
    from starlette.responses import Response

    return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})


def image_png(request):
    from samscope.web.views import display_png

    s, sid, files, row = _image(request)
    path = files.upload(row.stem, row.filename)
    plane = _plane(request)
    key = ("image", str(path), path.stat().st_mtime_ns, plane)
    return _png(s.pngs.get(key, lambda: display_png(path, plane)))


def labels_png(request):
    from samscope.web.views import labels_png as render

    s, sid, files, row = _image(request)
    _need_done(row)
    path = files.outputs(row).labels
    plane = _plane(request)
    key = ("labels", str(path), path.stat().st_mtime_ns, plane)
    return _png(s.pngs.get(key, lambda: render(path, plane)))


def overlay_png(request):
    from starlette.responses import FileResponse

    s, sid, files, row = _image(request)
    _need_done(row)
    path = files.outputs(row).overlay
    if not path.is_file():
        raise _http()(404, "no overlay (stacks have none)")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-cache"})


async def add_object(request):
    from starlette.concurrency import run_in_threadpool

    s, sid, files, row = _image(request)
    _need_done(row)
    try:
        body = await request.json()
        y, x = float(body["y"]), float(body["x"])
    except (ValueError, KeyError, TypeError):
        raise InputError('send JSON {"y": row, "x": column} in image pixels') from None
    model = await run_in_threadpool(s.pool.get, s.store.job(row.job).model)
    result = await run_in_threadpool(s.editor.add, files, row, model, y, x)
    return _after_edit(s, sid, row, result)


def remove_object(request):
    s, sid, files, row = _image(request)
    _need_done(row)
    text = request.path_params["oid"]
    if not text.isdigit():
        raise InputError("object ids are whole numbers")
    result = s.editor.remove(files, row, int(text))
    return _after_edit(s, sid, row, result)


def _after_edit(s, sid, row, result):
    version = s.store.edited(row.id, result.n_objects)
    return _json({"edit": dataclasses.asdict(result), "version": version,
                  "image": _image_json(s.store.image(sid, row.id), sid)})


# downloads -----------------------------------------------------------------------------------

def _zip_lock(key: str) -> threading.Lock:
    with _zip_guard:
        return _zip_locks.setdefault(key, threading.Lock())


def download_image(request):
    from starlette.responses import FileResponse

    s, sid, files, row = _image(request)
    _need_done(row)
    with _zip_lock(f"{sid}:{row.id}"):
        path = build_zip(files, [row], f"image-{row.stem}", flat=True)
    return FileResponse(path, media_type="application/zip",
                        filename=f"{row.stem}_samscope.zip")


def download_session(request):
    from starlette.responses import FileResponse

    s, sid, files = _session(request)
    images = s.store.images(sid)
    with _zip_lock(f"{sid}:all"):
        path = build_zip(files, [im for im in images if im.state == "done"], "session")
    return FileResponse(path, media_type="application/zip", filename="samscope_results.zip")


# assembly ------------------------------------------------------------------------------------

def routes():
    """The app's routes."""
    from starlette.routing import Route

    base = "/api/sessions/{sid}"
    img = base + "/images/{iid}"
    return [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/sessions", create_session, methods=["POST"]),
        Route(base, session),
        Route(base + "/jobs", create_job, methods=["POST"]),
        Route(base + "/jobs/{jid}", job),
        Route(base + "/download", download_session),
        Route(img, image),
        Route(img + "/metrics", metrics),
        Route(img + "/image.png", image_png),
        Route(img + "/labels.png", labels_png),
        Route(img + "/overlay.png", overlay_png),
        Route(img + "/objects", add_object, methods=["POST"]),
        Route(img + "/objects/{oid}", remove_object, methods=["DELETE"]),
        Route(img + "/download", download_image),
    ]


def error_handlers() -> dict:
    """JSON errors: InputError → 400, HTTP errors with their status, one line each."""
    from starlette.exceptions import HTTPException

    from samscope.errors import SamscopeError

    async def samscope_error(request, exc):
        return _json({"error": str(exc)}, 400)

    async def http_error(request, exc):
        return _json({"error": exc.detail}, exc.status_code)

    return {SamscopeError: samscope_error, HTTPException: http_error}
