"""Browser tests of the model page in the system's headless Chromium: add a metric column and
sort by it; the page follows an alias moved elsewhere without a reload; move an alias with the
page's own form; a viewer gets no actions, and a post without the page's CSRF token is refused.
axe-core finds no serious violation and the CSP is never violated."""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.ui_server import WAIT_S, UiServer, sign_in, ui_server, wait_for
from tests.support.browser import (
    csp_violations,
    describe_violations,
    run_axe,
    save_screenshot,
    serious_violations,
)

__all__ = ["ui_server"]  # the fixture, imported for the tests below

MODEL = "fraud-detector"


def _accessible_within_csp(browser: webdriver.Chrome) -> None:
    violations = serious_violations(run_axe(browser))
    assert violations == [], describe_violations(violations)
    assert csp_violations(browser) == []


def _column(browser: webdriver.Chrome, label: str) -> tuple[WebElement, list[str]]:
    """The header cell whose text starts with ``label`` and the texts of its column."""
    headers = browser.find_elements(By.CSS_SELECTOR, "table.versions thead th")
    index = next(i for i, th in enumerate(headers) if th.text.startswith(label))
    cells = browser.find_elements(
        By.CSS_SELECTOR, f"table.versions tbody td:nth-child({index + 1})"
    )
    return headers[index], [cell.text for cell in cells]


def _aliases(browser: webdriver.Chrome) -> str:
    return str(browser.find_element(By.ID, "aliases").text)


def test_add_a_metric_column_and_sort_by_it(browser: webdriver.Chrome, ui_server: UiServer) -> None:
    sign_in(browser, ui_server)
    browser.get(f"{ui_server.base_url}/models/{MODEL}?col=metrics.accuracy")
    wait_for(browser, By.CSS_SELECTOR, "table.versions")
    assert not [th for th in browser.find_elements(By.CSS_SELECTOR, "th") if "auc" in th.text]
    browser.find_element(By.CSS_SELECTOR, ".columns-chooser summary").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=col][value='metrics.auc']").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=col][value='params.optimizer']").click()
    browser.find_element(By.CSS_SELECTOR, ".columns-chooser button[type=submit]").click()
    wait_for(browser, By.XPATH, "//th[contains(., 'optimizer')]")
    header, values = _column(browser, "METRIC auc")
    assert header.get_attribute("aria-sort") is None
    header.find_element(By.TAG_NAME, "a").click()  # sort by it: highest first
    # The default view marks the version column descending: wait for the new page first.
    WebDriverWait(browser, WAIT_S).until(lambda b: "sort=metrics.auc" in b.current_url)
    wait_for(browser, By.CSS_SELECTOR, "th[aria-sort='descending']")
    header, values = _column(browser, "METRIC auc")
    assert header.get_attribute("aria-sort") == "descending"
    assert values == sorted(values, reverse=True) == ["0.962", "0.958", "0.951"]
    header.find_element(By.TAG_NAME, "a").click()  # and lowest first
    WebDriverWait(browser, WAIT_S).until(lambda b: "dir=asc" in b.current_url)
    wait_for(browser, By.CSS_SELECTOR, "th[aria-sort='ascending']")
    assert _column(browser, "METRIC auc")[1] == ["0.951", "0.958", "0.962"]
    assert "sort=metrics.auc" in browser.current_url
    assert browser.execute_script(  # the chart of the sorted metric was drawn
        "return !!window.Chart.getChart(document.querySelector('canvas[data-chart]'))"
    )
    _accessible_within_csp(browser)
    save_screenshot(browser, "model")


def test_the_page_follows_an_alias_moved_elsewhere(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    first, second, third = ui_server.versions
    sign_in(browser, ui_server)
    browser.get(f"{ui_server.base_url}/models/{MODEL}")
    WebDriverWait(browser, WAIT_S).until(
        expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, ".live"), "Live")
    )
    browser.execute_script("window.notReloaded = true")
    for box in browser.find_elements(By.CSS_SELECTOR, "input[name=v]")[:2]:
        box.click()
    assert f"staging → v{second}" in _aliases(browser)
    with ui_server.client() as client:
        client.set_alias(MODEL, "staging", third)
    WebDriverWait(browser, WAIT_S).until(lambda b: f"staging → v{third}" in _aliases(b))
    assert browser.execute_script("return window.notReloaded === true")
    history = browser.find_element(By.CSS_SELECTOR, "#history li").text
    assert history.startswith(f"staging moved v{second} → v{third}")
    ticked = browser.find_elements(By.CSS_SELECTOR, "input[name=v]:checked")
    assert len(ticked) == 2  # the refreshed table kept the ticks
    assert browser.find_element(By.CSS_SELECTOR, "[data-compare-button]").is_enabled()
    save_screenshot(browser, "model-live")
    # The page's own form: confirmed, then back on the page with a notice.
    browser.find_element(By.ID, "move-alias").send_keys("staging")
    Select(browser.find_element(By.ID, "move-version")).select_by_value(str(first))
    browser.find_element(By.CSS_SELECTOR, "#move button[type=submit]").click()
    prompt = browser.switch_to.alert
    assert prompt.text == f"Move staging to v{first}?"
    prompt.accept()
    wait_for(browser, By.CSS_SELECTOR, "p.notice")
    assert browser.find_element(By.CSS_SELECTOR, "p.notice").text == f"Moved staging to v{first}."
    assert f"staging → v{first}" in _aliases(browser)


def test_a_viewer_gets_no_actions_and_a_tokenless_post_is_refused(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    sign_in(browser, ui_server, ui_server.viewer_token)
    browser.get(f"{ui_server.base_url}/models/{MODEL}")
    wait_for(browser, By.CSS_SELECTOR, "table.versions")
    assert browser.find_elements(By.ID, "move") == []
    assert browser.find_elements(By.ID, "edit") == []
    assert browser.find_elements(By.CSS_SELECTOR, "form[method=post][action$='/aliases']") == []
    _accessible_within_csp(browser)
    save_screenshot(browser, "model-viewer")
    # Signed in as the admin, a post from the page's origin without its CSRF token (what a
    # forged form would send) changes nothing.
    sign_in(browser, ui_server)
    browser.get(f"{ui_server.base_url}/models/{MODEL}")
    wait_for(browser, By.ID, "move")
    before = _aliases(browser)
    status = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0], {method: "POST", credentials: "same-origin",
                             body: new URLSearchParams({alias: "production", version: "1"})})
          .then(function (r) { done(r.status); });""",
        f"{ui_server.base_url}/models/{MODEL}/aliases",
    )
    assert status == 403
    browser.refresh()
    wait_for(browser, By.ID, "aliases")
    assert _aliases(browser) == before
