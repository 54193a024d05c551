"""The browser-test support itself: system Chromium, axe-core, strict CSP, screenshots.

A tiny aiohttp app (served from a thread, so it answers while Selenium blocks this one) sends the
strict Content-Security-Policy the UI's pages will send. The tests prove that the policy is
really enforced in that browser (the page's inline script is blocked) and that axe-core still
runs there (it reports the missing ``alt`` of an image, so it did run).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.conftest import BrowserTools
from tests.support import browser as browser_support
from tests.support.browser import (
    AXE_CORE_VERSION,
    REPO_ROOT,
    SCREENSHOT_DIR,
    csp_violations,
    describe_violations,
    new_driver,
    run_axe,
    save_screenshot,
    serious_violations,
    serve_app_in_thread,
)

CSP = "default-src 'self'; script-src 'self'"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<script src="/static/page.js"></script>
</head>
"""

ACCESSIBLE_PAGE = (
    _HEAD.format(title="Models - modelregistry")
    + """<body>
<header><p>modelregistry</p></header>
<main>
<h1>Models</h1>
<p id="intro">3 models are registered.</p>
<form method="get" action="/">
  <label for="q">Search models</label>
  <input id="q" name="q" type="search">
  <button type="submit">Search</button>
</form>
<script>document.documentElement.dataset.inline = "ran";</script>
</main>
</body>
</html>
"""
)

IMAGE_WITHOUT_ALT_PAGE = (
    _HEAD.format(title="Broken - modelregistry")
    + """<body>
<main>
<h1>Model card</h1>
<img src="/static/pixel.png">
</main>
</body>
</html>
"""
)

# A script from 'self' is allowed: it marks the page so the test sees allowed scripts still run.
PAGE_JS = 'document.documentElement.dataset.external = "ran";\n'

# A valid 1x1 transparent PNG.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000b49444154789c6360000200000500017a5eab3f0000000049454e44ae426082"
)


def _html(body: str) -> web.Response:
    return web.Response(
        text=body, content_type="text/html", headers={"Content-Security-Policy": CSP}
    )


async def _accessible(_: web.Request) -> web.Response:
    return _html(ACCESSIBLE_PAGE)


async def _image_without_alt(_: web.Request) -> web.Response:
    return _html(IMAGE_WITHOUT_ALT_PAGE)


async def _page_js(_: web.Request) -> web.Response:
    return web.Response(text=PAGE_JS, content_type="text/javascript")


async def _pixel(_: web.Request) -> web.Response:
    return web.Response(body=PIXEL_PNG, content_type="image/png")


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """Base URL of the test app, served from another thread."""
    app = web.Application()
    app.router.add_get("/", _accessible)
    app.router.add_get("/image-without-alt", _image_without_alt)
    app.router.add_get("/static/page.js", _page_js)
    app.router.add_get("/static/pixel.png", _pixel)
    with serve_app_in_thread(app) as url:
        yield url


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_page_under_strict_csp_renders_and_passes_axe(browser: webdriver.Chrome, site: str) -> None:
    browser.get(f"{site}/")

    assert browser.title == "Models - modelregistry"
    assert browser.find_element(By.ID, "intro").text == "3 models are registered."
    assert browser.find_element(By.CSS_SELECTOR, "label[for=q]").text == "Search models"
    assert browser.execute_script("return navigator.language;") == "en-US"
    assert browser.execute_script("return [innerWidth, innerHeight];") == [1280, 900]
    # The policy is enforced: the allowed script from 'self' ran, the inline one was blocked
    # and the browser logged it as a CSP violation.
    marks = browser.execute_script("return {...document.documentElement.dataset};")
    assert marks == {"external": "ran"}
    blocked = csp_violations(browser)
    assert any("inline script" in message for message in blocked), blocked

    violations = run_axe(browser)

    assert isinstance(violations, list)
    assert serious_violations(violations) == [], describe_violations(violations)
    # Running axe (injected through WebDriver) is not itself blocked by the policy.
    assert csp_violations(browser) == []


def test_axe_reports_an_image_without_alt_under_strict_csp(
    browser: webdriver.Chrome, site: str
) -> None:
    browser.get(f"{site}/image-without-alt")
    assert browser.title == "Broken - modelregistry"

    violations = run_axe(browser)

    by_id = {v["id"]: v for v in violations}
    assert "image-alt" in by_id, describe_violations(violations)
    assert by_id["image-alt"]["impact"] == "critical"
    assert [n["html"] for n in by_id["image-alt"]["nodes"]] == ['<img src="/static/pixel.png">']
    assert "image-alt" in {v["id"] for v in serious_violations(violations)}
    # A second run reuses the axe already injected into the page.
    assert {v["id"] for v in run_axe(browser)} == set(by_id)


def test_save_screenshot_writes_a_png_of_the_window(browser: webdriver.Chrome, site: str) -> None:
    browser.get(f"{site}/")

    path = save_screenshot(browser, "tests/browser/test_support.py::screenshot[1280x900]")

    assert path.parent == SCREENSHOT_DIR
    assert path.name == "tests_browser_test_support.py_screenshot_1280x900.png"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert _png_size(data) == (1280, 900)


def test_new_driver_pins_the_viewport_size(chromium: BrowserTools, site: str) -> None:
    driver = new_driver(width=480, height=800)
    try:
        driver.get(f"{site}/")
        size = driver.execute_script("return [window.innerWidth, window.innerHeight];")
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()

    assert size == [480, 800]
    assert _png_size(png) == (480, 800)


@pytest.mark.parametrize(
    ("impacts", "expected"),
    [
        ([], []),
        (["minor", "moderate"], []),
        (["serious"], ["serious"]),
        (["critical", "minor", "serious", None, "moderate"], ["critical", "serious"]),
    ],
)
def test_serious_violations_keeps_serious_and_critical(
    impacts: list[str | None], expected: list[str]
) -> None:
    violations: list[dict[str, Any]] = [
        {"id": f"rule-{i}", "impact": impact} for i, impact in enumerate(impacts)
    ]

    kept = serious_violations(violations)

    assert [v["impact"] for v in kept] == expected
    assert all(v in violations for v in kept)


def test_makefile_pins_the_same_axe_core_version() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    match = re.search(r"^AXE_VERSION\s*:=\s*(\S+)\s*$", makefile, re.MULTILINE)
    assert match is not None, "Makefile has no AXE_VERSION"
    assert match.group(1) == AXE_CORE_VERSION


def test_ensure_chromium_installs_with_apt_then_updates_then_names_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser_support, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(browser_support, "CHROMIUM_INSTALL_LOCK", tmp_path / "install.lock")
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    calls: list[tuple[str, ...]] = []

    def failing_apt(args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 100, "", "E: Unable to locate package chromium")

    monkeypatch.setattr(browser_support, "_run_apt", failing_apt)

    with pytest.raises(RuntimeError) as raised:
        browser_support.ensure_chromium()

    assert calls == [browser_support.APT_INSTALL, browser_support.APT_UPDATE]
    message = str(raised.value)
    command = (
        "apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver"
    )
    assert command in message
    assert "E: Unable to locate package chromium" in message


def test_ensure_chromium_retries_the_install_after_an_update(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake, fake_driver = tmp_path / "chromium", tmp_path / "chromedriver"
    monkeypatch.setattr(browser_support, "CHROMIUM", fake)
    monkeypatch.setattr(browser_support, "CHROMEDRIVER", fake_driver)
    monkeypatch.setattr(browser_support, "CHROMIUM_INSTALL_LOCK", tmp_path / "install.lock")
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    calls: list[tuple[str, ...]] = []

    def apt(args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        if calls == [browser_support.APT_INSTALL, browser_support.APT_UPDATE, args]:
            for binary in (fake, fake_driver):
                binary.write_text("#!/bin/sh\n")
                binary.chmod(0o755)
            return subprocess.CompletedProcess(args, 0, "", "")
        return subprocess.CompletedProcess(args, 0 if args == browser_support.APT_UPDATE else 100)

    monkeypatch.setattr(browser_support, "_run_apt", apt)

    assert browser_support.ensure_chromium() == (str(fake), str(fake_driver))
    assert calls == [
        browser_support.APT_INSTALL,
        browser_support.APT_UPDATE,
        browser_support.APT_INSTALL,
    ]


def test_ensure_axe_core_without_npm_names_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser_support, "AXE_CORE_DIR", tmp_path / "axe-core")
    monkeypatch.setattr(browser_support, "AXE_CORE_JS", tmp_path / "axe-core" / "axe.min.js")
    monkeypatch.setattr(shutil, "which", lambda _name: None)

    with pytest.raises(RuntimeError, match=re.escape(browser_support.axe_core_install_command())):
        browser_support.ensure_axe_core()
