"""The search page in headless Chromium (selenium), against a real `vqgram serve` on a loopback port.

Needs Debian's `chromium` and `chromium-driver`; `make test` installs them
when it runs as root (as CI does). VQGRAM_SCREENSHOTS=DIR keeps first.png (the
first screen), result.png (an upload, bm25 beside dense) and boxes.png (where each
hit matched); docs/serve.png is first and boxes, stacked.
"""
from __future__ import annotations

import os
import shutil
import urllib.parse
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install 'vqgram[test]')")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from vqgram.serve.client import get_json  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="Debian's chromium and chromium-driver are not installed ('make test' installs them when run as root)")
LABELS = ("astronaut", "brick", "camera", "cat", "cell", "coffee", "grass", "gravel", "hubble", "retina", "rocket")
FOUR = ("coffee", "rocket", "astronaut", "hubble")  # a filter that 12 of the 33 images pass


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def waiter(driver) -> WebDriverWait:
    return WebDriverWait(driver, 120, ignored_exceptions=(StaleElementReferenceException,))


def open_page(driver, url: str, images: int = 33) -> WebDriverWait:
    wait = waiter(driver)
    driver.get(url)
    wait.until(lambda d: f"{images} images" in d.find_element(By.ID, "info").text)
    return wait


def read(driver, selector: str, prop: str = "textContent") -> list:
    """A property of every element matching `selector`, read in one script (the page may replace the grid
    between two element reads)."""
    return driver.execute_script(f"return [...document.querySelectorAll({selector!r})].map(e => e.{prop})")


def labels(driver) -> list[str]:
    return [t.split(". ", 1)[1] for t in read(driver, ".hit .label")]


def ids(driver) -> list[str]:
    return read(driver, ".hit", "dataset.id")


def query(driver) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(driver.current_url).query))


def keys(driver, *sequence) -> None:
    ActionChains(driver).send_keys(*sequence).perform()


def upload(driver, image: Path) -> None:
    picker = driver.find_element(By.ID, "file")
    driver.execute_script("arguments[0].hidden = false", picker)  # the drop zone's own file input
    picker.send_keys(str(image))
    driver.execute_script("arguments[0].hidden = true", picker)


def screenshot(driver, name: str) -> None:
    if os.environ.get("VQGRAM_SCREENSHOTS"):
        driver.save_screenshot(str(Path(os.environ["VQGRAM_SCREENSHOTS"]) / name))


def test_the_first_screen_is_the_collection_with_its_labels(browser, live_server):
    url = live_server("tantivy")
    wait = open_page(browser, url)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 33)
    assert browser.find_element(By.ID, "status").text.startswith("33 images")
    assert read(browser, ".hit .frame img", "getAttribute('src')") == [f"/thumb/{i}" for i in ids(browser)]
    assert all(alt.split(": ")[0] in LABELS and alt.endswith(".jpg") for alt in read(browser, ".hit img", "alt"))
    wait.until(lambda d: all(read(d, ".hit img", "complete && e.naturalWidth > 0")[:6]))  # the first row drawn
    newest = get_json(f"{url}/api/browse?limit=33")["items"]
    assert [h["id"] for h in newest] == ids(browser)
    assert [h["mtime"] for h in newest] == sorted((h["mtime"] for h in newest), reverse=True)
    facets = read(browser, ".facet", "innerText.replace(/\\s+/g, ' ')")
    assert facets == ["all 33"] + [f"{name} 3" for name in LABELS]
    screenshot(browser, "first.png")

    browser.find_element(By.CSS_SELECTOR, ".facet[data-filter='label:coffee']").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 3 and set(labels(d)) == {"coffee"})
    assert query(browser) == {"filter": "label:coffee"}
    assert browser.find_element(By.CSS_SELECTOR, ".facet.on").get_attribute("data-filter") == "label:coffee"
    browser.back()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 33 and query(d) == {})
    Select(browser.find_element(By.ID, "order")).select_by_value("random")
    wait.until(lambda d: query(d).get("order") == "random" and len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 33)
    shuffled = ids(browser)
    browser.refresh()  # the seed is in the URL: the same order again
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 33)
    assert ids(browser) == shuffled and sorted(shuffled) == sorted(h["id"] for h in newest)
    assert shuffled != [h["id"] for h in newest]


def test_upload_filter_compare_and_more_like_this(browser, live_server, queries):
    wait = open_page(browser, live_server("tantivy"))
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#mode option")][:2] == ["bm25", "dense"]
    upload(browser, queries / "cat.jpg")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 12)
    assert "hits in" in browser.find_element(By.ID, "status").text
    assert labels(browser)[0] == "cat" and query(browser) == {"image": "upload"}

    browser.find_element(By.ID, "compare").click()  # bm25 beside dense
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results.two .column")) == 2)
    overlap = browser.find_element(By.ID, "overlap").text
    shared = int(overlap.split()[0])
    assert overlap.endswith("of 12 in both") and 1 <= shared < 12
    assert len(browser.find_elements(By.CSS_SELECTOR, ".hit.both")) == 2 * shared
    columns = browser.find_elements(By.CSS_SELECTOR, "#results .column h2")
    assert columns[0].text.startswith("bm25") and columns[1].text.startswith("dense")
    wait.until(lambda d: all(read(d, ".hit img", "complete && e.naturalWidth > 0")[:4]))
    screenshot(browser, "result.png")

    box = browser.find_element(By.ID, "filter")
    box.send_keys(" OR ".join(f"label:{name}" for name in FOUR), Keys.ENTER)  # both columns, filtered
    # dense ranks all 12 such images; bm25 only those sharing a word with the query
    wait.until(lambda d: set(labels(d)) == set(FOUR)
               and len(d.find_elements(By.CSS_SELECTOR, "#results .column:last-child .hit")) == 12)

    first = browser.find_element(By.CSS_SELECTOR, ".hit")
    clicked = first.get_attribute("data-id")
    first.find_element(By.CSS_SELECTOR, ".similar").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("more like this image"))
    assert query(browser)["similar"] == clicked
    top = browser.find_elements(By.CSS_SELECTOR, "#results .column:last-child .hit")[0]
    assert top.get_attribute("data-id") == clicked  # dense: the clicked image is its own nearest
    browser.back()  # the upload is kept for this tab's history: its filtered comparison comes back
    wait.until(lambda d: "similar" not in query(d) and d.find_element(By.ID, "status").text.startswith("the image"))
    assert set(labels(browser)) == set(FOUR)

    browser.find_element(By.ID, "filter").send_keys(" AND", Keys.ENTER)
    wait.until(lambda d: "bad filter" in d.find_element(By.ID, "status").text)
    browser.back()
    browser.refresh()  # an uploaded image is not in the address: the page says so and shows the collection
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("an uploaded image is not kept"))
    assert set(labels(browser)) == set(FOUR)  # the filter was in the address


def test_a_result_lives_in_its_url(browser, live_server):
    url = live_server("tantivy")
    wait = open_page(browser, url)
    box = browser.find_element(By.ID, "q")
    box.send_keys("label:rocket", Keys.ENTER)
    wait.until(lambda d: set(labels(d)) == {"rocket"} and len(labels(d)) == 3)
    assert query(browser) == {"q": "label:rocket"}
    rockets = ids(browser)
    browser.find_elements(By.CSS_SELECTOR, ".hit .similar")[2].click()
    wait.until(lambda d: "similar" in query(d) and d.find_element(By.ID, "status").text.startswith("more like"))
    similar = ids(browser)
    assert query(browser)["similar"] == rockets[2]
    browser.refresh()  # a bookmark, or a reload: the same result
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("more like") and ids(d) == similar)
    browser.back()
    wait.until(lambda d: query(d) == {"q": "label:rocket"} and ids(d) == rockets)
    assert browser.find_element(By.ID, "q").get_attribute("value") == "label:rocket"
    browser.back()
    wait.until(lambda d: query(d) == {} and len(ids(d)) == 33)

    shared = f"{url}/?similar={rockets[0]}&mode=dense&k=5&compare=bm25&filter=NOT%20label%3Acat"
    browser.get(shared)  # a link someone sent: mode, k, comparison and filter all in it
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results.two .column")) == 2)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .column:first-child .hit")) == 5)
    assert Select(browser.find_element(By.ID, "mode")).first_selected_option.text == "dense"
    assert browser.find_element(By.ID, "compare").is_selected()
    assert browser.find_element(By.ID, "filter").get_attribute("value") == "NOT label:cat"
    assert ids(browser)[0] == rockets[0] and "cat" not in labels(browser)


def test_the_keyboard_and_the_full_photo(browser, live_server):
    wait = open_page(browser, live_server("tantivy"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 33)
    everything = ids(browser)
    columns = browser.execute_script(
        "const c = [...document.querySelectorAll('.hit')]; return c.filter(e => e.offsetTop === c[0].offsetTop).length")
    assert 2 <= columns < 33
    focused = lambda: browser.switch_to.active_element.get_attribute("data-id")  # noqa: E731
    keys(browser, Keys.ARROW_DOWN)  # nothing focused yet: the first card
    assert focused() == everything[0]
    keys(browser, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_LEFT)
    assert focused() == everything[1]
    keys(browser, Keys.ARROW_DOWN)
    assert focused() == everything[1 + columns]
    keys(browser, Keys.ARROW_UP, Keys.ARROW_UP)  # no row above the first: it stays
    assert focused() == everything[1]

    keys(browser, "/")
    assert browser.switch_to.active_element.get_attribute("id") == "q"
    keys(browser, "label:gravel", Keys.ENTER)
    wait.until(lambda d: set(labels(d)) == {"gravel"} and len(labels(d)) == 3)
    found = ids(browser)
    keys(browser, Keys.ARROW_DOWN, Keys.ARROW_RIGHT)  # from the query box to the first hit, then the next
    assert focused() == found[1]

    keys(browser, "o")  # the full photo, served by its id
    wait.until(lambda d: d.execute_script("return document.getElementById('viewer').open"))
    wait.until(lambda d: d.execute_script("const i = document.getElementById('full'); return i.complete && i.naturalWidth > 0"))
    assert browser.find_element(By.ID, "full").get_attribute("src").endswith(f"/photo/{found[1]}")
    width = browser.execute_script("return document.getElementById('full').naturalWidth")
    assert f"{width}×" in browser.find_element(By.ID, "viewer-caption").text
    keys(browser, Keys.ESCAPE)
    wait.until(lambda d: not d.execute_script("return document.getElementById('viewer').open"))
    assert browser.switch_to.active_element.get_attribute("data-id") == found[1]

    keys(browser, Keys.ENTER)  # more like the focused hit
    wait.until(lambda d: query(d).get("similar") == found[1] and d.find_element(By.ID, "status").text.startswith("more"))
    browser.find_element(By.CSS_SELECTOR, ".hit .frame").click()  # a click on a thumbnail opens the photo too
    wait.until(lambda d: d.execute_script("return document.getElementById('viewer').open"))


def scores(driver) -> list[str]:
    return read(driver, ".hit .score")


def test_query_words_and_verify_controls(browser, live_server, queries):
    """The page sends query words with an upload (its hits are the API's with that option, not its
    default's: twice the model's words on this small index) and verification with any query (hits show their
    inliers; an indexed image finds itself)."""
    import httpx

    url = live_server("tantivy")
    wait = open_page(browser, url)
    words = httpx.get(f"{url}/api/info").json()["words_per_image"]
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#qwords option")] == [
        "auto", str(words), str(2 * words), str(4 * words)]

    def api(**fields) -> list[str]:
        with open(queries / "cat.jpg", "rb") as f:
            hits = httpx.post(f"{url}/api/search", files={"image": f}, data={"mode": "bm25", "k": "12", **fields},
                              timeout=60).json()["hits"]
        return [f"{h['score']:.3f}" for h in hits]

    upload(browser, queries / "cat.jpg")
    default = api()
    wait.until(lambda d: scores(d) == default)

    assert api(query_words=str(2 * words)) == default
    Select(browser.find_element(By.ID, "qwords")).select_by_value(str(words))
    fewer = api(query_words=str(words))
    assert fewer != default  # half the words score lower: the option reached the engine
    wait.until(lambda d: scores(d) == fewer)
    assert query(browser)["qwords"] == str(words)

    first = browser.find_element(By.CSS_SELECTOR, ".hit")
    clicked = first.get_attribute("data-id")
    first.find_element(By.CSS_SELECTOR, ".similar").click()  # an indexed image: query words do not apply
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("more like this image"))
    Select(browser.find_element(By.ID, "verify")).select_by_value("20")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".tag.inliers")) == 12)
    top = browser.find_element(By.CSS_SELECTOR, ".hit")
    assert top.get_attribute("data-id") == clicked
    assert int(top.find_element(By.CSS_SELECTOR, ".tag.inliers").text.split()[0]) >= 15


def test_boxes_show_where_each_hit_matched(browser, live_server, queries):
    """The default model's local words: each hit's boxes drawn over its thumbnail where the API puts them (in
    the hit's pixels, the thumbnail cropped to its frame), and the query's matched region over the query."""
    wait = open_page(browser, live_server("tantivy"))
    upload(browser, queries / "coffee.jpg")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 12
               and d.find_elements(By.CSS_SELECTOR, ".hit .box.first") and d.find_elements(By.CSS_SELECTOR, "#drop .box"))
    assert labels(browser)[0] == "coffee"
    drawn = browser.execute_script("""
        return [...document.querySelectorAll('.hit')].filter(el => el.hit.boxes).map(el => {
          const frame = el.querySelector('.frame').getBoundingClientRect();
          const box = el.querySelector('.box.first').getBoundingClientRect();
          return {hit: el.hit, frame: [frame.width, frame.height], weak: el.querySelector('.box.first.weak') !== null,
                  box: [box.left - frame.left, box.top - frame.top, box.width, box.height]};
        })""")
    assert len(drawn) == 12  # every hit of an image search says where it matched
    from vqgram.searcher.local_match import MIN_LOCAL_INLIERS

    assert [d["weak"] for d in drawn] == [d["hit"]["inliers"] < MIN_LOCAL_INLIERS for d in drawn]  # dashed: a guess
    assert not drawn[0]["weak"] and any(d["weak"] for d in drawn)
    for d in drawn:
        (fw, fh), (w, h), (x0, y0, x1, y1) = d["frame"], (d["hit"]["width"], d["hit"]["height"]), d["hit"]["boxes"][0]
        s = max(fw / w, fh / h)  # object-fit: cover, centred
        expected = [(fw - w * s) / 2 + x0 * s, (fh - h * s) / 2 + y0 * s, (x1 - x0) * s, (y1 - y0) * s]
        assert d["box"] == pytest.approx(expected, abs=1.0)
    first = drawn[0]["hit"]
    assert browser.find_element(By.CSS_SELECTOR, "#drop .box").get_attribute("title") == f"matched {first['path']}"
    other = browser.find_elements(By.CSS_SELECTOR, ".hit")[1]
    ActionChains(browser).move_to_element(other).perform()  # the query region of the hit under the pointer
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#drop .box").get_attribute("title")
               == f"matched {drawn[1]['hit']['path']}")
    screenshot(browser, "boxes.png")


def test_an_open_page_shows_photos_indexed_meanwhile(browser, photos, tokenizer, tmp_path):
    """The page asks /api/info every few seconds; when the server has taken in a new commit (another run
    of `vqgram index`: tests/test_serve_reload.py), the count, the labels and the collection follow."""
    from conftest import serve_in_thread

    from vqgram import index_folder
    from vqgram.serve import SearchService

    library = tmp_path / "library"
    for name in ("coffee", "cat"):
        shutil.copytree(photos / name, library / name)
    index_folder(library, tmp_path / "idx", tokenizer, progress=False, workers=0)
    server, thread, url = serve_in_thread(SearchService(tmp_path / "idx", reload_every=0.5), tmp_path / "thumbs")
    try:
        wait = open_page(browser, url, images=6)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 6)
        shutil.copytree(photos / "rocket", library / "rocket")
        index_folder(library, tmp_path / "idx", tokenizer, progress=False, workers=0)
        wait.until(lambda d: "9 images" in d.find_element(By.ID, "info").text)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".hit")) == 9)
        assert "rocket 3" in read(browser, ".facet", "innerText.replace(/\\s+/g, ' ')")
    finally:
        server.should_exit = True
        thread.join(30)
