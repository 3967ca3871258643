"""End to end in a real browser: headless Chromium driven by Selenium against a live server.

Loads the page, uploads examples/nuclei.tif through the file input, waits for "done", checks the
drawn outlines and the metrics table, removes and re-adds an object by clicking, and downloads
the zip. Skipped (with the reason) only where Chromium, its driver or Selenium are missing.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import pytest
from tests.web.conftest import NUCLEI, need_web_extra

need_web_extra()
pytest.importorskip("uvicorn", reason="uvicorn is missing: pip install 'samscope[web]'")
webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is missing: pip install selenium")

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip("headless browser tests need Chromium and chromedriver (Debian: apt install "
                "chromium chromium-driver)", allow_module_level=True)


def make_driver(downloads: Path):
    """Headless Chromium that saves downloads into ``downloads``."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=opts)


def wait_until(fn, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def click_image(driver, y: float, x: float) -> None:
    """A real mouse click on image pixel (y, x) of the viewer."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "view")
    v = driver.execute_script("return state.view")
    w, h = canvas.size["width"], canvas.size["height"]
    cx, cy = v["x"] + (x + 0.5) * v["scale"], v["y"] + (y + 0.5) * v["scale"]
    ActionChains(driver).move_to_element_with_offset(canvas, int(cx - w / 2),
                                                     int(cy - h / 2)).click().perform()


def metric(driver, name: str) -> str:
    """The value shown for one metric ("" while the table is not there)."""
    return driver.execute_script(
        "const r = document.querySelector(`#metrics tr[data-metric='${arguments[0]}']`);"
        "return r ? r.cells[1].textContent : '';", name)


def object_table(driver) -> tuple[list[str], list[list[str]]]:
    """The per-object table's header and rows, read in one step."""
    return driver.execute_script(
        "const t = document.getElementById('objects');"
        "return [[...t.tHead.rows[0].cells].map(c => c.textContent),"
        "        [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent))];")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, one_torch_thread):
    from samscope.web import ServerConfig
    from samscope.web.server import ThreadedServer

    data = tmp_path_factory.mktemp("web-data")
    downloads = tmp_path_factory.mktemp("downloads")
    with ThreadedServer(ServerConfig(data_dir=data, port=0)) as server:
        driver = make_driver(downloads)
        try:
            yield driver, server, downloads
        finally:
            driver.quit()


@pytest.fixture(scope="module")
def processed(browser):
    """The page with examples/nuclei.tif uploaded through the file input and done."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, server, _ = browser
    driver.get(server.url + "/")
    wait_until(lambda: driver.execute_script("return document.body.dataset.ready"), 30, "page")
    Select(driver.find_element(By.ID, "size-mode")).select_by_value("px")
    box = driver.find_element(By.ID, "diameter")
    box.clear()
    box.send_keys("30")
    driver.find_element(By.ID, "file-input").send_keys(str(NUCLEI))
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, '#queue li[data-state="done"]'),
               180, "the image to be done")
    wait_until(lambda: driver.execute_script(
        "return document.getElementById('view').dataset.loaded") == "labels", 30, "the labels")
    wait_until(lambda: metric(driver, "n_objects"), 30, "the metrics table")
    return driver


def test_page_loads(browser):
    from selenium.webdriver.common.by import By

    driver, server, _ = browser
    start = time.perf_counter()
    driver.get(server.url + "/")
    wait_until(lambda: driver.execute_script("return document.body.dataset.ready"), 30, "page")
    assert time.perf_counter() - start < 15
    assert driver.find_element(By.ID, "drop-zone").is_displayed()
    models = [o.text for o in driver.find_elements(By.CSS_SELECTOR, "#model option")]
    assert models == ["samscope-generalist"]
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_upload_shows_outlines_and_metrics(processed):
    from selenium.webdriver.common.by import By

    driver = processed
    item = driver.find_element(By.CSS_SELECTOR, '#queue li[data-state="done"]')
    assert "nuclei.tif" in item.text and "object" in item.text
    # outlines drawn: coloured pixels on the canvas (the image itself is grey)
    coloured = driver.execute_script("""
        const c = document.getElementById('view');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (Math.abs(d[i] - d[i + 1]) > 40 || Math.abs(d[i + 1] - d[i + 2]) > 40) n++;
        }
        return n;""")
    assert coloured > 200
    count = int(metric(driver, "n_objects"))
    assert count > 3 and metric(driver, "confluency").endswith("%")
    assert metric(driver, "mean_neighbours") != ""
    _, rows = object_table(driver)
    assert len(rows) == count
    # filled style and opacity redraw without errors
    driver.find_element(By.CSS_SELECTOR, 'input[name="style"][value="filled"]').click()
    driver.find_element(By.ID, "zoom-in").click()
    driver.find_element(By.ID, "zoom-fit").click()


def test_click_removes_and_adds_an_object(processed):
    from selenium.webdriver.common.by import By

    driver = processed
    count = int(metric(driver, "n_objects"))
    cols, rows = object_table(driver)
    big = max(rows, key=lambda r: float(r[cols.index("area_px")]))
    y, x = float(big[cols.index("centroid_y_px")]), float(big[cols.index("centroid_x_px")])
    driver.find_element(By.ID, "edit-toggle").click()
    click_image(driver, y, x)
    wait_until(lambda: metric(driver, "n_objects") == str(count - 1), 60, "the removal")
    click_image(driver, y, x)
    wait_until(lambda: metric(driver, "n_objects") == str(count), 120, "the added object")
    assert "added object" in driver.find_element(By.ID, "status").text
    driver.find_element(By.ID, "edit-toggle").click()


def test_download_zip(processed, browser):
    from selenium.webdriver.common.by import By

    driver, _, downloads = browser
    driver.find_element(By.ID, "download-one").click()
    path = wait_until(lambda: next((p for p in downloads.glob("*.zip")), None), 120, "the zip")
    wait_until(lambda: not list(downloads.glob("*.crdownload")), 60, "the download to end")
    names = zipfile.ZipFile(path).namelist()
    for name in ("nuclei_labels.tif", "nuclei_objects.csv", "nuclei_overlay.png",
                 "nuclei_segmentation.json", "report/report.html"):
        assert name in names, names


def test_reopening_shows_the_session(processed):
    from selenium.webdriver.common.by import By

    driver = processed
    driver.refresh()
    wait_until(lambda: driver.execute_script("return document.body.dataset.ready"), 30, "page")
    items = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR,
                                                    '#queue li[data-state="done"]'), 30,
                       "the session's images")
    assert "nuclei.tif" in items[0].text
    items[0].click()
    wait_until(lambda: metric(driver, "n_objects"), 30, "the metrics after reopening")
