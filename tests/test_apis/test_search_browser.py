"""The catalogue-search page in a real browser (headless Chromium).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs
them); skipped, with the reason, where neither can be found. Set
``MVLT_SEARCH_SCREENSHOT`` to keep the screenshot (docs/images/
search_page.png was taken so).
"""
import copy
import os
import os.path as osp
import shutil
import urllib.request

import cv2
import pytest
from mmengine.config import Config
from search_test_utils import (DEMO_ITC, DEMO_RETRIEVAL, fit_itc_projections,
                               running_search_app, save_model)

from conftest import load_tool, point_vocab
from mvlt.apis import open_gallery
from mvlt.utils import register_all_modules

pytest.importorskip('faiss', reason='faiss-cpu (requirements/optional.txt)')
pytest.importorskip('gradio', reason='gradio (requirements/optional.txt)')
webdriver = pytest.importorskip(
    'selenium.webdriver', reason='selenium (requirements/tests.txt)')

#: Flags Chromium needs here: no sandbox as root, no GPU, and no attempt to
#: reach the (closed) network.
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu',
                  '--disable-quic', '--no-first-run',
                  '--disable-background-networking',
                  '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--window-size=1280,1000')


@pytest.fixture(scope='module')
def browser() -> tuple:
    """Paths of Chromium and its driver (skips without them)."""
    chromium = next(
        (shutil.which(name)
         for name in ('chromium', 'chromium-browser', 'google-chrome')
         if shutil.which(name)), None)
    driver = shutil.which('chromedriver')
    if not chromium or not driver:
        pytest.skip('No Chromium and chromedriver on this machine: '
                    'apt-get install chromium chromium-driver')
    return chromium, driver


@pytest.fixture(scope='module')
def server(synthetic_fashiongen, tmp_path_factory):
    """The search app over the synthetic Fashion-Gen validation split, with
    the demo model whose ITC head is fitted to that gallery; re-ranking by
    the (random) ITM head of the ITC top 1 only, so that the first result
    is the ITC one."""
    register_all_modules()
    root = str(tmp_path_factory.mktemp('search_page'))
    cfg = Config.fromfile(DEMO_RETRIEVAL)
    point_vocab(cfg._cfg_dict, synthetic_fashiongen['vocab'])
    cfg.model.heads.itc = copy.deepcopy(DEMO_ITC)
    config, checkpoint = save_model(cfg, root, 'demo_itc')
    gallery = open_gallery(synthetic_fashiongen['validation'])
    fit_itc_projections(config, checkpoint,
                        gallery.read_many(range(len(gallery))),
                        [r['caption'] for r in gallery.rows],
                        [r['product_id'] for r in gallery.rows])
    out = osp.join(root, 'index')
    load_tool('misc/build_search_index.py').main(
        [config, checkpoint, '--gallery', gallery.path, '--out', out])

    def answers(port: int) -> None:
        urllib.request.urlopen(
            f'http://127.0.0.1:{port}/api/info', timeout=5)

    with running_search_app(
            out, root, '--rerank-k', '1', ready=answers,
            deadline_s=180) as port:
        yield dict(url=f'http://127.0.0.1:{port}/', gallery=gallery)


def _click_until(driver, button, found, tries: int = 8):
    """Click ``button`` until ``found(driver)`` is truthy; returns it.

    The page's event handlers are attached after its elements are drawn, so
    a first click can be lost on a slow machine; a click is repeated every
    15 s (up to ``tries`` times) rather than failing on one.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    for _ in range(tries):
        button.click()
        try:
            return WebDriverWait(driver, 15).until(found)
        except TimeoutException:
            continue
    pytest.fail(f'Nothing appeared after {tries} clicks on '
                f'{button.get_attribute("id")!r}; page text:\n'
                f'{driver.find_element("tag name", "body").text[:2000]}')


@pytest.mark.slow
def test_search_page_in_chromium(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    chromium, driver_path = browser
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + (f'--user-data-dir={tmp_path / "profile"}', ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=webdriver.ChromeService(executable_path=driver_path),
        options=options)
    wait = WebDriverWait(driver, 120)
    try:
        driver.get(server['url'])
        # Gradio renders its components progressively: the query box can be
        # on the page before the button is (seen in CI with Chromium 156), so
        # each element is waited for, not looked up once.
        box = wait.until(lambda d: d.find_element(
            By.CSS_SELECTOR, '#query textarea, #query input'))
        button = wait.until(lambda d: next(
            (b for b in d.find_elements(By.ID, 'search')
             if b.is_displayed() and b.is_enabled()), False))
        # An empty query gets a message, not a traceback.
        error = _click_until(driver, button, lambda d: d.find_element(
            By.CSS_SELECTOR, '#text-results .mvlt-error'))
        assert 'empty' in error.text
        # A product's exact attributes (its caption) find it first.
        rows = server['gallery'].rows
        target = rows[len(rows) // 2]
        assert sum(r['caption'] == target['caption'] for r in rows) == sum(
            r['product_id'] == target['product_id'] for r in rows)
        box.send_keys(target['caption'])
        button.click()
        cards = wait.until(lambda d: d.find_elements(
            By.CSS_SELECTOR, '#text-results .mvlt-card'))
        assert len(cards) == 10
        assert cards[0].get_attribute('data-product') == target['product_id']
        assert target['caption'] in cards[0].text
        image = cards[0].find_element(By.TAG_NAME, 'img')
        wait.until(lambda d: d.execute_script(
            'return arguments[0].complete && arguments[0].naturalWidth > 0',
            image))
        # Everything the page loaded came from the app itself (offline).
        loaded = driver.execute_script(
            "return performance.getEntriesByType('resource')"
            '.map(e => e.name)')
        assert loaded and [
            u for u in loaded
            if not u.startswith((server['url'], 'data:', 'blob:'))
        ] == []
        shot = os.environ.get('MVLT_SEARCH_SCREENSHOT') or str(
            tmp_path / 'search_page.png')
        assert driver.save_screenshot(shot) and osp.getsize(shot) > 10_000
        # "More like this" opens other products like the first result.
        cards[0].find_element(By.CSS_SELECTOR, 'a.mvlt-like').click()
        similar = wait.until(lambda d: d.find_elements(
            By.CSS_SELECTOR, '#like-results .mvlt-card'))
        assert similar and all(
            c.get_attribute('data-product') != target['product_id']
            for c in similar)
        # A photo of the product finds its caption and the product itself;
        # a file that is not an image gets a message.
        photo = str(tmp_path / 'photo.png')
        row = rows.index(target)
        cv2.imwrite(photo, server['gallery'].read(row)[..., ::-1])
        note = tmp_path / 'note.png'
        note.write_text('not an image')
        for upload, selector in ((photo, '.mvlt-caption-hit'),
                                 (str(note), '.mvlt-error')):
            driver.get(server['url'])
            wait.until(lambda d: next((tab for tab in d.find_elements(
                By.XPATH, "//button[contains(., 'Search by image')]")
                                       if tab.is_displayed()), False)).click()
            wait.until(lambda d: d.find_element(
                By.CSS_SELECTOR, '#upload input[type=file]')).send_keys(upload)
            found = wait.until(lambda d: d.find_elements(
                By.CSS_SELECTOR, '#image-results ' + selector))
            if upload == photo:
                assert found[0].text.startswith(target['caption'])
                products = driver.find_elements(By.CSS_SELECTOR,
                                                '#image-results .mvlt-card')
                assert products[0].get_attribute('data-product') == \
                    target['product_id']
            else:
                assert 'not an image' in found[0].text
    finally:
        driver.quit()
