"""Fixtures for browser tests: the system Chromium (see :mod:`tests.support.browser`).

``chromium`` (session) makes sure Chromium, chromedriver and axe-core are there, installing them
if they are not (never skipping). ``browser`` gives each test a fresh headless Chromium and quits
it afterwards; when the test failed, a screenshot named after the test is saved first under
``tests/browser/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from selenium import webdriver

from tests.support.browser import ensure_axe_core, ensure_chromium, new_driver, save_screenshot
from tests.support.fixtures_minio import _test_deadline_paused

# Each phase's report ("setup", "call", "teardown") of the test, for the browser fixture.
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


class BrowserTools(NamedTuple):
    """What the ``chromium`` fixture found."""

    chromium: str
    chromedriver: str
    axe_core_js: Path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def chromium() -> BrowserTools:
    """The system Chromium and chromedriver and the pinned axe-core, installed if missing.

    An install (apt-get, npm) can take longer than the per-test timeout; it is bounded by its
    own timeouts, so the clock of the test that happens to need it first is paused meanwhile.
    """
    with _test_deadline_paused():
        chromium_path, chromedriver_path = ensure_chromium()
        axe_core_js = ensure_axe_core()
    return BrowserTools(chromium_path, chromedriver_path, axe_core_js)


@pytest.fixture
def browser(chromium: BrowserTools, request: pytest.FixtureRequest) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (1280x900, en-US) for one test; a screenshot if the test fails."""
    driver = new_driver()
    try:
        yield driver
        report = request.node.stash.get(_REPORTS, {}).get("call")
        if report is not None and report.failed:
            path = save_screenshot(driver, request.node.nodeid.removeprefix("tests/browser/"))
            print(f"screenshot of the failed test: {path}")
    finally:
        driver.quit()
