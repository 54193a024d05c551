"""Browser tests of the version, compare and audit log pages in the system's headless Chromium:
the rendered model card (whose script never runs), a compare view with a changed param and
changed, added files marked, the audit log filtered by method, the actions hidden from a
viewer; axe-core finds no serious violation and the CSP is never violated on any of them."""

from __future__ import annotations

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from tests.browser.ui_server import UiServer, sign_in, ui_server, wait_for
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


def _no_alert(browser: webdriver.Chrome) -> bool:
    try:
        browser.switch_to.alert  # noqa: B018 - raises when no alert is open
    except NoAlertPresentException:
        return True
    return False


def test_version_page_shows_the_card_without_running_its_script(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    sign_in(browser, ui_server)
    number = ui_server.versions[1]
    browser.get(f"{ui_server.base_url}/models/{MODEL}/versions/{number}")
    wait_for(browser, By.CSS_SELECTOR, ".markdown")
    card = browser.find_element(By.CSS_SELECTOR, ".markdown")
    assert card.find_element(By.TAG_NAME, "h3").text == "Fraud detector"
    assert card.find_element(By.CSS_SELECTOR, "table td").text == "train"
    # The card's <script> is text on the page, not an element, and nothing ran.
    assert '<script>alert("cards are rendered without raw HTML")</script>' in card.text
    assert card.find_elements(By.TAG_NAME, "script") == []
    assert _no_alert(browser)
    files = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#files td.path")]
    assert [f.split()[0] for f in files] == ["calibration.json", "config.json", "model.bin"]
    link = browser.find_element(By.CSS_SELECTOR, "#files a[download]")
    assert "/files/calibration.json" in str(link.get_attribute("href"))
    assert browser.find_elements(By.ID, "approve-form")  # the admin may approve
    _accessible_within_csp(browser)
    save_screenshot(browser, "version")


def test_compare_marks_a_changed_param_and_changed_files(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    sign_in(browser, ui_server)
    first, _, third = ui_server.versions
    browser.get(f"{ui_server.base_url}/compare?model={MODEL}&v={first}&v={third}")
    wait_for(browser, By.ID, "cmp-params")
    changed = browser.find_elements(By.CSS_SELECTOR, "#cmp-params tr.changed th")
    assert {row.text.split()[0] for row in changed} == {"learning_rate", "max_depth", "optimizer"}
    assert all(row.find_element(By.CSS_SELECTOR, ".badge.changed") for row in changed)
    files = {
        row.find_element(By.TAG_NAME, "th").text: row
        for row in browser.find_elements(By.CSS_SELECTOR, "#cmp-files tbody tr")
    }
    assert "changed" in files["model.bin"].get_attribute("class").split()  # type: ignore[union-attr]
    assert files["model.bin"].find_element(By.CSS_SELECTOR, ".badge.changed").text == "changed"
    assert files["calibration.json"].find_element(By.CSS_SELECTOR, ".badge.added").text == "added"
    assert files["config.json"].find_element(By.CSS_SELECTOR, ".badge.same").text == "same"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#cmp-metrics meter")) == 6
    _accessible_within_csp(browser)
    save_screenshot(browser, "compare")
    # Changing the selection with the form rewrites the address.
    field = browser.find_element(By.ID, "cmp-v3")
    field.send_keys(str(ui_server.versions[1]))
    browser.find_element(By.CSS_SELECTOR, "form.compare-form button[type=submit]").click()
    wait_for(browser, By.CSS_SELECTOR, "#cmp-versions thead th:nth-child(4)")
    assert f"v={ui_server.versions[1]}" in browser.current_url


def test_compare_with_too_many_versions_says_so(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    sign_in(browser, ui_server)
    browser.get(f"{ui_server.base_url}/compare?model={MODEL}&v=1&v=2&v=3&v=4&v=5")
    wait_for(browser, By.ID, "problem")
    assert "at most 4 versions" in browser.find_element(By.ID, "problem").text
    _accessible_within_csp(browser)


def test_audit_log_filtered_by_method(browser: webdriver.Chrome, ui_server: UiServer) -> None:
    sign_in(browser, ui_server)
    browser.get(f"{ui_server.base_url}/audit")
    wait_for(browser, By.ID, "audit")
    browser.find_element(By.ID, "f-method").send_keys("SetAlias")
    browser.find_element(By.ID, "f-model").send_keys(MODEL)
    browser.find_element(By.CSS_SELECTOR, "form.audit-filters button[type=submit]").click()
    wait_for(browser, By.CSS_SELECTOR, "a.button[href='/audit']")  # Clear: a filtered view
    methods = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#audit td:nth-child(3)")]
    assert methods == ["SetAlias"] * 3
    assert "method=SetAlias" in browser.current_url
    _accessible_within_csp(browser)
    save_screenshot(browser, "audit")


def test_a_viewer_sees_no_actions_on_a_version(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    sign_in(browser, ui_server, ui_server.viewer_token)
    browser.get(f"{ui_server.base_url}/models/{MODEL}/versions/{ui_server.versions[0]}")
    wait_for(browser, By.CSS_SELECTOR, ".markdown")
    assert browser.find_elements(By.ID, "approve-form") == []
    assert browser.find_elements(By.ID, "edit-form") == []
    _accessible_within_csp(browser)
    save_screenshot(browser, "version-viewer")
