"""The web app in headless Chromium: page load and "drop to outlines" times, and screenshots.

Starts the app in this process on 127.0.0.1, opens the page in headless Chromium (Selenium),
and measures

- **page load**: from navigation to the page being ready (``document.body.dataset.ready``:
  models listed, session opened);
- **drop to outlines**: from giving ``examples/nuclei.tif`` to the file input to the outlines
  being drawn and the metrics table shown, once with the object size automatic (the model's
  own estimate) and once with it given (30 px). The first image of a server also loads the
  model, so a warm-up image is processed first and reported apart;

and saves a screenshot of each state into ``docs/images/web_*.png`` (``--no-screenshots``
to skip): the empty page, an image processing, the result with outlines, filled objects
zoomed in, the editing mode after a click, and a failed image with its reason.

    python benchmarks/web_browser.py
    python benchmarks/web_browser.py --threads 1 --repeats 3

Figures from a busy machine say little: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUCLEI = ROOT / "examples" / "nuclei.tif"


def driver_for(downloads: Path):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("google-chrome") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    return webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")),
                            options=opts)


def wait(fn, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        time.sleep(0.01)
    return value


def page_load(driver, url: str) -> float:
    start = time.perf_counter()
    driver.get(url)
    wait(lambda: driver.execute_script("return document.body.dataset.ready"))
    return time.perf_counter() - start


def set_size(driver, diameter: str | None) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "size-mode")).select_by_value("auto" if diameter is None
                                                                    else "px")
    if diameter is not None:
        box = driver.find_element(By.ID, "diameter")
        box.clear()
        box.send_keys(diameter)


def drop_to_outlines(driver, path: Path, shots: Path | None = None) -> float:
    """Seconds from the file given to the file input to outlines + metrics on screen."""
    from selenium.webdriver.common.by import By

    driver.execute_script("state.selected = null;")  # the new upload is shown
    start = time.perf_counter()
    driver.find_element(By.ID, "file-input").send_keys(str(path))
    if shots is not None:
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, '#queue li[data-state="processing"]'))
        driver.save_screenshot(str(shots / "web_2_processing.png"))
    wait(lambda: driver.execute_script(
        "const v = document.getElementById('view');"
        "return v.dataset.loaded === 'labels' && state.images.some("
        "i => i.id === state.selected && i.state === 'done')"
        " && document.querySelector('#metrics tr[data-metric=\"n_objects\"]')"))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the server")
    ap.add_argument("--no-screenshots", action="store_true")
    ap.add_argument("--shots", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from selenium.webdriver.common.by import By

    from samscope.web import ServerConfig
    from samscope.web.server import ThreadedServer

    shots = None if args.no_screenshots else args.shots
    tmp = Path(tempfile.mkdtemp(prefix="samscope-web-browser-"))
    figures: dict = {}
    with ThreadedServer(ServerConfig(data_dir=tmp / "data", port=0,
                                     threads=args.threads)) as server:
        driver = driver_for(tmp)
        try:
            loads = [page_load(driver, server.url + "/") for _ in range(args.repeats + 1)]
            figures["page_load_s"] = {"first": round(loads[0], 3),
                                      "median_after": round(statistics.median(loads[1:]), 3)}
            if shots is not None:
                shots.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(shots / "web_1_empty.png"))
            set_size(driver, "30")
            figures["first_image_with_model_load_s"] = round(drop_to_outlines(driver, NUCLEI),
                                                             3)
            for label, size in (("given_30px", "30"), ("automatic", None)):
                set_size(driver, size)
                times = [drop_to_outlines(driver, NUCLEI) for _ in range(args.repeats)]
                figures[f"drop_to_outlines_{label}_s"] = [round(t, 3) for t in times]
            if shots is not None:
                set_size(driver, "30")
                drop_to_outlines(driver, NUCLEI, shots)
                time.sleep(0.5)
                driver.save_screenshot(str(shots / "web_3_result.png"))
                driver.find_element(By.CSS_SELECTOR, 'input[name="style"][value="filled"]').click()
                for _ in range(2):
                    driver.find_element(By.ID, "zoom-in").click()
                driver.save_screenshot(str(shots / "web_4_filled_zoomed.png"))
                driver.find_element(By.ID, "zoom-fit").click()
                driver.find_element(By.CSS_SELECTOR, 'input[name="style"][value="outlines"]').click()
                driver.find_element(By.ID, "edit-toggle").click()
                _click_first_object(driver)
                wait(lambda: "removed object" in driver.find_element(By.ID, "status").text, 60)
                time.sleep(1.5)  # the tables follow the picture
                driver.save_screenshot(str(shots / "web_5_edit.png"))
                bad = tmp / "not_an_image.tif"
                bad.write_bytes(b"II*\x00" + b"\x00" * 64)  # a TIFF header and nothing else
                driver.find_element(By.ID, "file-input").send_keys(str(bad))
                time.sleep(1.5)
                driver.save_screenshot(str(shots / "web_6_refused.png"))
        finally:
            driver.quit()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _click_first_object(driver) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    y, x = driver.execute_script(
        "const t = document.getElementById('objects');"
        "const h = [...t.tHead.rows[0].cells].map(c => c.textContent);"
        "const r = t.tBodies[0].rows[0].cells;"
        "return [Number(r[h.indexOf('centroid_y_px')].textContent),"
        "        Number(r[h.indexOf('centroid_x_px')].textContent)];")
    canvas = driver.find_element(By.ID, "view")
    v = driver.execute_script("return state.view")
    cx, cy = v["x"] + (x + 0.5) * v["scale"], v["y"] + (y + 0.5) * v["scale"]
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(cx - canvas.size["width"] / 2), int(cy - canvas.size["height"] / 2)
    ).click().perform()


if __name__ == "__main__":
    main()
