"""Load test of the web app: N clients each upload K images at once against a local server.

Starts ``samscope serve`` as a child process bound to 127.0.0.1 (never another address), then
N threads each create their own session, upload K copies of an example image (each copy made
unique by a few changed pixels, so a mix-up between sessions would show), poll until done, and
check that every image of their session is done, that their session lists exactly their
images, and that each result's record names its own upload. Reports throughput (images per
second from the first upload to the last result) and the server's peak resident memory (the
kernel's VmHWM of the child, measured under this load) and how responsive the server stayed:
the latency of the page (``GET /``) and of ``GET /api/info``, probed every half second while
the jobs run.

    python benchmarks/web_load.py                     # 20 clients × 5 images
    python benchmarks/web_load.py --clients 4 --images 2 --diameter 30

Figures from a busy machine say little: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def variant(image: np.ndarray, client: int, k: int) -> bytes:
    import tifffile

    out = image.copy()
    out[0, :8] = client  # a visible fingerprint per client and image
    out[1, :8] = k
    buf = io.BytesIO()
    tifffile.imwrite(buf, out)
    return buf.getvalue()


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a process (Linux), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def client_run(base: str, index: int, n: int, image: np.ndarray, diameter: str,
               results: list, timeout: float) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=120) as c:
        sid = c.post("/api/sessions").json()["session"]
        files = [("files", (f"c{index:02d}_img{k}.tif", variant(image, index, k), "image/tiff"))
                 for k in range(n)]
        t0 = time.perf_counter()
        r = c.post(f"/api/sessions/{sid}/jobs", files=files, data={"diameter": diameter})
        r.raise_for_status()
        ids = {im["id"] for im in r.json()["images"]}
        deadline = time.monotonic() + timeout
        while True:
            s = c.get(f"/api/sessions/{sid}").json()
            if all(im["state"] in ("done", "failed") for im in s["images"]):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"client {index}: not finished after {timeout} s")
            time.sleep(0.5)
        listed = {im["id"] for im in s["images"]}
        problems = []
        if listed != ids:
            problems.append("session lists other images")
        failed = [im for im in s["images"] if im["state"] != "done"]
        problems += [f"{im['name']}: {im['error']}" for im in failed]
        for im in s["images"]:
            rec = c.get(f"/api/sessions/{sid}/images/{im['id']}").json()
            if im["state"] == "done" and not rec["name"].startswith(f"c{index:02d}_"):
                problems.append(f"{im['id']} belongs to another client")
        results.append({"client": index, "seconds": time.perf_counter() - t0,
                        "images": len(ids), "problems": problems})


def probe(base: str, stop: threading.Event, out: dict) -> None:
    """Latency of the page and of /api/info while the load runs (what a user's browser sees)."""
    import httpx

    with httpx.Client(base_url=base, timeout=60) as c:
        while not stop.is_set():
            for path in ("/", "/api/info"):
                t = time.perf_counter()
                c.get(path).raise_for_status()
                out.setdefault(path, []).append(time.perf_counter() - t)
            stop.wait(0.5)


def _latency(values: list[float]) -> dict:
    if not values:
        return {}
    v = np.asarray(values) * 1000
    return {"n": len(v), "median_ms": round(float(np.median(v)), 1),
            "p95_ms": round(float(np.percentile(v, 95)), 1), "max_ms": round(float(v.max()), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--image", type=Path, default=ROOT / "examples" / "nuclei.tif")
    ap.add_argument("--diameter", default="auto", help="object size in px, or auto")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the server")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()

    import tifffile

    image = tifffile.imread(args.image)
    port = free_port()
    data = tempfile.mkdtemp(prefix="samscope-web-load-")
    cmd = [sys.executable, "-m", "samscope.cli.main", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--data", data]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    log = open(Path(data) / "server.log", "w")  # noqa: SIM115 - open while the server runs
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{base}/api/info", timeout=2).raise_for_status()
                break
            except httpx.HTTPError as err:
                if server.poll() is not None or time.monotonic() > deadline:
                    text = (Path(data) / "server.log").read_text()
                    raise RuntimeError(f"the server did not start:\n{text}") from err
                time.sleep(0.2)
        results: list = []
        threads = [threading.Thread(target=client_run, args=(base, i, args.images, image,
                                                              args.diameter, results,
                                                              args.timeout))
                   for i in range(args.clients)]
        latencies: dict = {}
        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(base, stop, latencies))
        t0 = time.perf_counter()
        prober.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        stop.set()
        prober.join()
        peak = peak_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    total = sum(r["images"] for r in results)
    problems = [p for r in results for p in r["problems"]]
    figures = {
        "clients": args.clients, "images_per_client": args.images, "images": total,
        "clients_finished": len(results), "wall_s": round(wall, 2),
        "throughput_images_per_s": round(total / wall, 3) if wall else None,
        "client_seconds_median": float(np.median([r["seconds"] for r in results]))
        if results else None,
        "server_peak_rss_mib_under_load": round(peak, 1), "problems": problems,
        "page_latency_under_load": _latency(latencies.get("/", [])),
        "api_info_latency_under_load": _latency(latencies.get("/api/info", [])),
        "diameter": args.diameter, "cpu_count": os.cpu_count(),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if problems or len(results) != args.clients:
        sys.exit(1)


if __name__ == "__main__":
    main()
