"""Browser tests of sign-in and the models page, in the system's headless Chromium."""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.ui_server import UiServer, sign_in, ui_server, wait_for
from tests.support.auth import ADMIN_TOKEN
from tests.support.browser import (
    csp_violations,
    describe_violations,
    run_axe,
    save_screenshot,
    serious_violations,
)

__all__ = ["ui_server"]  # the fixture, imported for the tests below


def test_sign_in_with_a_token_then_out(browser: webdriver.Chrome, ui_server: UiServer) -> None:
    browser.get(ui_server.base_url + "/")
    assert "/signin" in browser.current_url  # a page needs a session first
    save_screenshot(browser, "signin")
    sign_in(browser, ui_server)
    assert browser.find_element(By.CSS_SELECTOR, ".topbar .principal").text == "admin"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Models"
    # The token is in an HttpOnly cookie: a script on the page cannot read it.
    assert ADMIN_TOKEN not in str(browser.execute_script("return document.cookie"))
    assert ADMIN_TOKEN not in browser.page_source
    save_screenshot(browser, "signed-in")
    browser.find_element(By.CSS_SELECTOR, "form[action='/signout'] button").click()
    wait_for(browser, By.ID, "token")
    browser.get(ui_server.base_url + "/")
    assert "/signin" in browser.current_url


def test_a_wrong_token_is_refused_on_the_sign_in_page(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    browser.get(ui_server.base_url + "/signin")
    browser.find_element(By.ID, "token").send_keys("mr1_0000000000000000_not-a-real-secret")
    browser.find_element(By.CSS_SELECTOR, "form[action='/signin'] button[type=submit]").click()
    wait_for(browser, By.CSS_SELECTOR, ".alert")
    assert "not accepted" in browser.find_element(By.CSS_SELECTOR, ".alert").text
    save_screenshot(browser, "signin-refused")


def test_search_models_with_a_filter(browser: webdriver.Chrome, ui_server: UiServer) -> None:
    sign_in(browser, ui_server)
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#models tbody a.strong")]
    assert names == ["churn-predictor", "fraud-detector", "image-tagger"]
    search = browser.find_element(By.ID, "filter")
    search.send_keys('labels.team = "risk"')
    browser.find_element(By.CSS_SELECTOR, "form.filter-bar button[type=submit]").click()
    # The Clear button exists only on the filtered page (the brand link is on every page).
    wait_for(browser, By.CSS_SELECTOR, "form.filter-bar a.button[href='/']")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#models tbody a.strong")]
    assert names == ["fraud-detector"]
    row = browser.find_element(By.CSS_SELECTOR, "#models tbody tr").text
    assert "production → v2" in row
    assert "team=risk" in row
    save_screenshot(browser, "models-filtered")


def test_an_invalid_filter_shows_the_servers_message(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    sign_in(browser, ui_server)
    browser.find_element(By.ID, "filter").send_keys("colour = blue")
    browser.find_element(By.CSS_SELECTOR, "form.filter-bar button[type=submit]").click()
    wait_for(browser, By.CSS_SELECTOR, ".alert")
    assert "unknown field 'colour'" in browser.find_element(By.CSS_SELECTOR, ".alert").text
    save_screenshot(browser, "models-bad-filter")


def test_models_page_is_accessible_and_keeps_to_its_csp(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    sign_in(browser, ui_server)
    violations = serious_violations(run_axe(browser))
    assert violations == [], describe_violations(violations)
    assert csp_violations(browser) == []
    save_screenshot(browser, "models")


def test_a_token_with_non_ascii_characters_is_refused_not_a_server_error(
    browser: webdriver.Chrome, ui_server: UiServer
) -> None:
    browser.get(ui_server.base_url + "/signin")
    browser.find_element(By.ID, "token").send_keys("mr1_zürich_token")
    browser.find_element(By.CSS_SELECTOR, "form[action='/signin'] button[type=submit]").click()
    wait_for(browser, By.CSS_SELECTOR, ".alert")
    assert "not accepted" in browser.find_element(By.CSS_SELECTOR, ".alert").text
