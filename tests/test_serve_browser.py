"""The search page in headless Chromium (selenium), against a real `vqgram serve` on a loopback port.

Needs Debian's `chromium` and `chromium-driver`; `make test` installs them
when it runs as root (as CI does). VQGRAM_SCREENSHOT=FILE.png keeps a
screenshot of the compare view (docs/serve.png is one).
"""
from __future__ import annotations

import os
import shutil

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install 'vqgram[test]')")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="Debian's chromium and chromium-driver are not installed ('make test' installs them when run as root)")


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def labels(driver) -> list[str]:
    """The hits' labels, read in one script (the page may replace the grid between two element reads)."""
    texts = driver.execute_script("return [...document.querySelectorAll('.hit .label')].map(e => e.textContent)")
    return [t.split(". ", 1)[1] for t in texts]


def test_upload_filter_compare_and_click(browser, live_server, queries):
    wait = WebDriverWait(browser, 120, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(live_server("tantivy"))
    wait.until(lambda d: "33 images" in d.find_element(By.ID, "info").text)
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#mode option")][:2] == ["bm25", "dense"]

    picker = browser.find_element(By.ID, "file")
    browser.execute_script("arguments[0].hidden = false", picker)  # the drop zone's own file input
    picker.send_keys(str(queries / "cat.jpg"))
    browser.execute_script("arguments[0].hidden = true", picker)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 12)
    assert "hits in" in browser.find_element(By.ID, "status").text
    assert labels(browser)[0] == "cat"

    browser.find_element(By.ID, "compare").click()  # bm25 beside dense
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results.two .column")) == 2)
    overlap = browser.find_element(By.ID, "overlap").text
    shared = int(overlap.split()[0])
    assert overlap.endswith("of 12 in both") and 1 <= shared < 12
    assert len(browser.find_elements(By.CSS_SELECTOR, ".hit.both")) == 2 * shared
    columns = browser.find_elements(By.CSS_SELECTOR, "#results .column h2")
    assert columns[0].text.startswith("bm25") and columns[1].text.startswith("dense")
    if os.environ.get("VQGRAM_SCREENSHOT"):
        browser.save_screenshot(os.environ["VQGRAM_SCREENSHOT"])

    box = browser.find_element(By.ID, "filter")
    box.send_keys("label:coffee OR label:rocket OR label:astronaut OR label:hubble", Keys.ENTER)  # both columns
    # dense ranks all 12 such images; bm25 only those sharing a word with the query
    wait.until(lambda d: set(labels(d)) == {"coffee", "rocket", "astronaut", "hubble"}
               and len(d.find_elements(By.CSS_SELECTOR, "#results .column:last-child .hit")) == 12)

    first = browser.find_element(By.CSS_SELECTOR, ".hit")
    clicked = first.get_attribute("data-id")
    first.click()
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("more like the clicked image"))
    top = browser.find_elements(By.CSS_SELECTOR, "#results .column:last-child .hit")[0]
    assert top.get_attribute("data-id") == clicked  # dense: the clicked image is its own nearest

    browser.find_element(By.ID, "filter").send_keys(" AND", Keys.ENTER)
    wait.until(lambda d: "bad filter" in d.find_element(By.ID, "status").text)


def scores(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('.hit .score')].map(e => e.textContent)")


def test_query_words_and_verify_controls(browser, live_server, queries):
    """The page sends query words with an upload (its hits are the API's with that option, not its
    default's: twice the model's words on this small index) and verification with any query (hits show their inliers; an indexed image finds itself)."""
    import httpx

    url = live_server("tantivy")
    wait = WebDriverWait(browser, 120, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(url)
    wait.until(lambda d: "33 images" in d.find_element(By.ID, "info").text)
    words = httpx.get(f"{url}/api/info").json()["words_per_image"]
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#qwords option")] == [
        "auto", str(words), str(2 * words), str(4 * words)]

    def api(**fields) -> list[str]:
        with open(queries / "cat.jpg", "rb") as f:
            hits = httpx.post(f"{url}/api/search", files={"image": f}, data={"mode": "bm25", "k": "12", **fields},
                              timeout=60).json()["hits"]
        return [f"{h['score']:.3f}" for h in hits]

    picker = browser.find_element(By.ID, "file")
    browser.execute_script("arguments[0].hidden = false", picker)
    picker.send_keys(str(queries / "cat.jpg"))
    browser.execute_script("arguments[0].hidden = true", picker)
    default = api()
    wait.until(lambda d: scores(d) == default)

    assert api(query_words=str(2 * words)) == default
    Select(browser.find_element(By.ID, "qwords")).select_by_value(str(words))
    fewer = api(query_words=str(words))
    assert fewer != default  # half the words score lower: the option reached the engine
    wait.until(lambda d: scores(d) == fewer)
    assert not browser.find_elements(By.CSS_SELECTOR, ".tag.inliers")

    first = browser.find_element(By.CSS_SELECTOR, ".hit")
    clicked = first.get_attribute("data-id")
    first.click()  # more like an indexed image: query words do not apply, verification does
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("more like the clicked image"))
    Select(browser.find_element(By.ID, "verify")).select_by_value("20")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tag.inliers")) == 12)
    top = browser.find_element(By.CSS_SELECTOR, ".hit")
    assert top.get_attribute("data-id") == clicked
    assert int(top.find_element(By.CSS_SELECTOR, ".tag.inliers").text.split()[0]) >= 15
