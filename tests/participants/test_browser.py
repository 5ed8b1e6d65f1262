"""The leaderboard page in a real browser: headless Chromium (Debian chromium + chromium-driver) via selenium."""

from __future__ import annotations

import shutil

import pytest

from ppipe.participants import service
from tests.participants.conftest import deliver, make_challenge

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Chromium and its driver (Debian: apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})  # no JS
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def table(driver) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]


def test_leaderboard_reads_and_sorts_in_chromium_without_javascript(api, tmp_path, browser):
    from selenium.webdriver.common.by import By

    base, ledger = api
    challenge = make_challenge(tmp_path, ledger)
    for name in ("alice", "bob", "carol"):
        service.add(challenge.name, name, ledger=ledger)
    deliver(ledger, challenge.name)
    alice = service.authenticate(service.rotate(challenge.name, "alice", ledger=ledger), ledger=ledger)
    request = next(r for r in service.list_requests(alice, ledger=ledger) if r["kind"] == "validation")
    from ppipe.participants.delivered import read_release
    import polars as pl

    rows = read_release(challenge, 0).filter(pl.col("row_id").is_in(request["row_ids"]))
    service.answer(alice, request["id"], rows, ledger=ledger)

    browser.get(f"{base}/leaderboard?challenge={challenge.name}")
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#leaderboard thead th")]
    assert headers[:4] == ["rank", "participant", "validation correct", "on time"]
    shown = table(browser)
    assert [row[1] for row in shown] == ["alice", "bob", "carol"] and shown[0][2] == "100.0%"
    assert browser.find_element(By.ID, "leaderboard").is_displayed()

    browser.find_element(By.LINK_TEXT, "participant").click()  # first click: the column's natural order, A to Z
    assert [row[1] for row in table(browser)] == ["alice", "bob", "carol"]
    browser.find_element(By.LINK_TEXT, "participant").click()  # second click: reversed
    assert [row[1] for row in table(browser)] == ["carol", "bob", "alice"]
    assert browser.find_element(By.CSS_SELECTOR, "th[data-key=participant]").get_attribute("aria-sort") == "descending"
    browser.find_element(By.LINK_TEXT, "validation correct").click()  # best first
    assert [row[1] for row in table(browser)][0] == "alice"
