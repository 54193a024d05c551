"""A real headless Chromium for the web UI's browser tests, and axe-core to check accessibility.

DESIGN.md ("Known pitfalls", Browsers): Debian's ``chromium`` and ``chromium-driver`` packages
work headless here (as root only with ``--no-sandbox``); tools that download their own browser
fail. So this module drives the system Chromium through the system chromedriver and never lets
Selenium Manager download anything (a ``Service`` with an explicit driver path and
``options.binary_location`` make Selenium skip it).

* :func:`ensure_chromium` finds ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``, installing
  the Debian packages (under a file lock) if they are missing. It never skips: without a browser
  it raises an error that names the command to run.
* :func:`ensure_axe_core` finds or installs ``axe.min.js`` of the pinned :data:`AXE_CORE_VERSION`
  into ``.tools/node`` with npm (``make axe`` does the same).
* :func:`new_driver` starts a headless Chromium with a fixed window size and language.
* :func:`run_axe` runs axe-core in the open page and returns its violations;
  :func:`serious_violations` keeps the serious and critical ones.
* :func:`save_screenshot` writes a PNG under ``tests/browser/screenshots/`` (git-ignored).
* :func:`serve_app_in_thread` runs an aiohttp application on its own event loop in a thread.

**Content-Security-Policy.** The UI's pages send a strict CSP (no ``'unsafe-inline'``, no
``'unsafe-eval'``). That does not stop :func:`run_axe`: chromedriver evaluates
``execute_script``/``execute_async_script`` through the DevTools protocol
(``Runtime.callFunctionOn``), which the page's CSP does not govern, and axe-core 4.x itself uses no
``eval``/``new Function``. Measured here with Chromium 156 against a page sending
``default-src 'self'; script-src 'self'``: the page's own inline ``<script>`` was blocked (a
"security" entry in the browser log), while injecting ``axe.min.js`` and ``axe.run`` worked and
reported the page's violations (``tests/browser/test_browser_support.py`` keeps checking both).
The DevTools ``Page.setBypassCSP`` switch is therefore deliberately *not* used: it would turn the
policy off for the whole page, and the UI tests must see what a user's browser enforces (an inline
handler that CSP blocks is a bug those tests should catch, see :func:`csp_violations`).

**Blocking calls and event loops.** Every Selenium call blocks its thread until the browser
answers. A server on the pytest session's event loop serves nothing while a sync test runs (the
loop is not running then), so a page test either runs its server in another thread
(:func:`serve_app_in_thread`, or a registry subprocess) or is an async test that makes its
Selenium calls with ``await asyncio.to_thread(...)``.

It is plain library code (no pytest import). Running it as a script
(``python -m tests.support.browser``) gets both tools ahead of time and prints their paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / ".tools"

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
APT_PACKAGES = ("chromium", "chromium-driver")
APT_INSTALL = ("apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES)
APT_UPDATE = ("apt-get", "update")
CHROMIUM_INSTALL_LOCK = TOOLS_DIR / "chromium.install.lock"
# A cold install of Chromium pulls ~100 MB of packages; allow plenty on a slow mirror.
APT_TIMEOUT_S = 1800.0

#: The newest 4.x release ``npm view axe-core versions`` listed when it was pinned (2026).
#: Keep it equal to ``AXE_VERSION`` in the Makefile (a test checks that).
AXE_CORE_VERSION = "4.14.1"
NODE_PREFIX = TOOLS_DIR / "node"
AXE_CORE_DIR = NODE_PREFIX / "node_modules" / "axe-core"
AXE_CORE_JS = AXE_CORE_DIR / "axe.min.js"
AXE_INSTALL_LOCK = TOOLS_DIR / "axe-core.install.lock"
NPM_TIMEOUT_S = 600.0

SCREENSHOT_DIR = REPO_ROOT / "tests" / "browser" / "screenshots"

#: axe impacts, mildest first; :func:`serious_violations` keeps the last two.
AXE_IMPACTS = ("minor", "moderate", "serious", "critical")
SERIOUS_IMPACTS = frozenset({"serious", "critical"})

# How long one axe run (and any other async script) may take before WebDriver gives up.
SCRIPT_TIMEOUT_S = 30.0
PAGE_LOAD_TIMEOUT_S = 30.0


def chromium_install_command() -> str:
    """Return the shell command that installs the system Chromium and chromedriver.

    Returns:
        A command line suitable for copying into a terminal (as root).
    """
    return f"{' '.join(APT_UPDATE)} && {' '.join(APT_INSTALL)}"


def axe_core_install_command() -> str:
    """Return the shell command that installs the pinned axe-core into ``.tools/node``.

    Returns:
        A command line to run in the repository root (what ``make axe`` runs).
    """
    return (
        "npm install --silent --no-audit --no-fund --prefix .tools/node "
        f"axe-core@{AXE_CORE_VERSION}"
    )


def _is_executable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _chromium_present() -> bool:
    return _is_executable_file(CHROMIUM) and _is_executable_file(CHROMEDRIVER)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run_apt(args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT_S,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def _chromium_help(problem: str) -> str:
    return (
        f"Chromium for the browser tests is not available: {problem}\n"
        "The web UI's tests drive a real headless Chromium (DESIGN.md, 'Known pitfalls').\n"
        "Install Debian's packages, as root:\n"
        f"  {chromium_install_command()}\n"
        f"They provide {CHROMIUM} and {CHROMEDRIVER}."
    )


def ensure_chromium() -> tuple[str, str]:
    """Return the paths of the system Chromium and chromedriver, installing them if missing.

    If either is missing, ``apt-get install`` installs Debian's ``chromium`` and
    ``chromium-driver`` (and only if that fails, ``apt-get update`` and the install once more).
    The install holds an exclusive lock on ``.tools/chromium.install.lock`` so parallel pytest
    workers install once; the others wait and then use the result.

    Returns:
        ``(chromium binary path, chromedriver path)``.

    Raises:
        RuntimeError: they are missing and could not be installed (no apt-get, not root, no
            mirror, timeout). The message names the command to run.
    """
    if _chromium_present():
        return str(CHROMIUM), str(CHROMEDRIVER)
    if shutil.which("apt-get") is None:
        raise RuntimeError(_chromium_help("it is missing and apt-get is not on PATH."))
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with CHROMIUM_INSTALL_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            # Another process may have installed it while this one waited for the lock.
            if _chromium_present():
                return str(CHROMIUM), str(CHROMEDRIVER)
            try:
                result = _run_apt(APT_INSTALL)
                if result.returncode != 0:
                    # Usually stale or missing package lists (a fresh container has none).
                    update = _run_apt(APT_UPDATE)
                    result = _run_apt(APT_INSTALL) if update.returncode == 0 else update
            except (OSError, subprocess.SubprocessError) as exc:
                raise RuntimeError(_chromium_help(f"installing it failed: {exc}")) from exc
            if result.returncode != 0:
                raise RuntimeError(
                    _chromium_help(
                        f"`{' '.join(result.args)}` exited with {result.returncode}:\n"
                        f"{_tail(result.stderr or result.stdout)}"
                    )
                )
            if not _chromium_present():
                raise RuntimeError(
                    _chromium_help(
                        f"the packages installed, but {CHROMIUM} or {CHROMEDRIVER} "
                        "is still missing."
                    )
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return str(CHROMIUM), str(CHROMEDRIVER)


def _installed_axe_version() -> str | None:
    try:
        package = json.loads((AXE_CORE_DIR / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = package.get("version") if isinstance(package, dict) else None
    return version if isinstance(version, str) else None


def axe_core_is_current() -> bool:
    """Tell whether ``.tools/node`` holds ``axe.min.js`` of :data:`AXE_CORE_VERSION`.

    Returns:
        True if :func:`ensure_axe_core` will not have to install.
    """
    return AXE_CORE_JS.is_file() and _installed_axe_version() == AXE_CORE_VERSION


def _axe_help(problem: str) -> str:
    return (
        f"axe-core {AXE_CORE_VERSION} for the browser tests is not available: {problem}\n"
        "Install it (needs Node.js with npm and access to the npm registry), in the repository "
        "root:\n"
        f"  {axe_core_install_command()}\n"
        "or: make axe"
    )


def ensure_axe_core() -> Path:
    """Return the path of ``axe.min.js`` of the pinned axe-core, installing it if needed.

    The install (npm, into ``.tools/node`` beside buf) holds an exclusive lock on
    ``.tools/axe-core.install.lock`` so parallel callers install once. Another version found
    there is replaced by the pinned one.

    Returns:
        Absolute path of ``axe.min.js``.

    Raises:
        RuntimeError: it is missing and npm could not install it. The message says how.
    """
    if axe_core_is_current():
        return AXE_CORE_JS
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(_axe_help("it is missing and npm is not on PATH."))
    NODE_PREFIX.mkdir(parents=True, exist_ok=True)
    with AXE_INSTALL_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if axe_core_is_current():
                return AXE_CORE_JS
            try:
                result = subprocess.run(
                    [
                        npm,
                        "install",
                        "--silent",
                        "--no-audit",
                        "--no-fund",
                        "--prefix",
                        str(NODE_PREFIX),
                        f"axe-core@{AXE_CORE_VERSION}",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=NPM_TIMEOUT_S,
                    check=False,
                    cwd=REPO_ROOT,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise RuntimeError(_axe_help(f"npm install failed: {exc}")) from exc
            if result.returncode != 0:
                raise RuntimeError(
                    _axe_help(
                        f"npm install exited with {result.returncode}:\n"
                        f"{_tail(result.stderr or result.stdout)}"
                    )
                )
            if not axe_core_is_current():
                raise RuntimeError(
                    _axe_help(
                        f"npm install succeeded but {AXE_CORE_JS} is not version "
                        f"{AXE_CORE_VERSION} (found {_installed_axe_version()})."
                    )
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return AXE_CORE_JS


def new_driver(width: int = 1280, height: int = 900) -> webdriver.Chrome:
    """Start a headless system Chromium through the system chromedriver.

    Selenium Manager is never consulted (the driver path is given to ``Service`` and the browser
    path as ``binary_location``), so nothing is downloaded. The browser runs with
    ``--no-sandbox`` (tests run as root here), ``--disable-dev-shm-usage`` (small ``/dev/shm`` in
    containers), no GPU, a fixed window size with a viewport of exactly ``width`` x ``height``
    and the en-US language, so pages and screenshots come out the same on every machine. The
    browser log (see :func:`csp_violations`) records everything.

    Args:
        width: viewport (and window) width in CSS pixels.
        height: viewport height in CSS pixels.

    Returns:
        The driver; the caller must ``quit()`` it.
    """
    chromium, chromedriver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--lang=en-US",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    # --lang sets the UI language; the Accept-Language header and navigator.languages follow the
    # profile's preference.
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        # --window-size is the outer window; headless Chromium still keeps ~140 px of it for
        # its (invisible) toolbars. Pin the page's viewport itself, so layout, media queries
        # and screenshots are exactly width x height CSS pixels at scale 1 on every machine.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.set_script_timeout(SCRIPT_TIMEOUT_S)
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    except BaseException:
        driver.quit()
        raise
    return driver


# Resolves with {"violations": [...]} or {"error": "..."}: a rejected promise would otherwise
# surface only as a script timeout.
_AXE_RUN_SCRIPT = """
const done = arguments[arguments.length - 1];
if (typeof window.axe === "undefined") {
  done({error: "axe-core is not loaded in this page"});
  return;
}
window.axe.run(document, {resultTypes: ["violations"]}).then(
  (results) => done({violations: results.violations}),
  (error) => done({error: String(error && error.stack || error)}),
);
"""


def run_axe(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Run axe-core on the page open in ``driver`` and return its violations.

    ``axe.min.js`` (:func:`ensure_axe_core`) is injected with ``execute_script`` unless the page
    has it already, then ``axe.run(document, {resultTypes: ['violations']})`` runs through
    ``execute_async_script``. Works under a strict Content-Security-Policy (module docstring).

    Args:
        driver: a driver with the page to check loaded.

    Returns:
        axe's violation objects (``id``, ``impact``, ``description``, ``help``, ``helpUrl``,
        ``tags``, ``nodes``), empty when the page passes.

    Raises:
        RuntimeError: axe could not be loaded or its run failed.
    """
    if not driver.execute_script("return typeof window.axe !== 'undefined';"):
        driver.execute_script(ensure_axe_core().read_text(encoding="utf-8"))
    outcome = driver.execute_async_script(_AXE_RUN_SCRIPT)
    if not isinstance(outcome, dict):
        raise RuntimeError(f"axe.run returned {outcome!r}")
    if "error" in outcome:
        raise RuntimeError(f"axe.run failed: {outcome['error']}")
    violations = outcome.get("violations")
    if not isinstance(violations, list):
        raise RuntimeError(f"axe.run returned no violations list: {outcome!r}")
    return violations


def serious_violations(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the violations whose impact is ``serious`` or ``critical``.

    Args:
        violations: what :func:`run_axe` returned.

    Returns:
        The serious and critical ones, in their original order.
    """
    return [v for v in violations if v.get("impact") in SERIOUS_IMPACTS]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    """Format violations one per line for an assertion message.

    Args:
        violations: axe violation objects.

    Returns:
        Lines like ``image-alt (critical): Images must have alternative text: img[src="x"]``.
    """
    lines = []
    for v in violations:
        targets = ", ".join(str(n.get("target")) for n in v.get("nodes", [])[:5])
        lines.append(f"{v.get('id')} ({v.get('impact')}): {v.get('help')}: {targets}")
    return "\n".join(lines)


def csp_violations(driver: webdriver.Chrome) -> list[str]:
    """Return the Content-Security-Policy violations the browser logged since the last call.

    Reading the browser log empties it, so a later call returns only newer entries.

    Args:
        driver: a driver from :func:`new_driver` (which records the browser log).

    Returns:
        The log messages about CSP (e.g. a blocked inline script or style).
    """
    # Selenium leaves get_log unannotated; it returns a list of dicts (level, message, source).
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [
        str(e.get("message"))
        for e in entries
        if "Content Security Policy" in str(e.get("message", ""))
    ]


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def save_screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Save a PNG of the browser window under ``tests/browser/screenshots/``.

    Args:
        driver: the driver to photograph.
        name: file name without extension (a test id is fine: characters other than letters,
            digits, ``.``, ``_`` and ``-`` become ``_``).

    Returns:
        Path of the PNG written (an earlier one of the same name is replaced).

    Raises:
        RuntimeError: the browser did not produce the screenshot.
    """
    stem = _UNSAFE_NAME.sub("_", name).strip("._") or "screenshot"
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{stem}.png"
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"the browser did not save a screenshot to {path}")
    return path


@contextlib.contextmanager
def serve_app_in_thread(app: web.Application, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an aiohttp application on a free port from its own event loop in a thread.

    For sync browser tests: the server keeps answering while Selenium blocks the test's thread.

    Args:
        app: the application (not started yet).
        host: address to bind.

    Yields:
        The base URL, e.g. ``http://127.0.0.1:40123`` (no trailing slash).
    """
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    thread: threading.Thread | None = None
    try:
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, host, 0)
        loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        thread = threading.Thread(target=loop.run_forever, name="browser-test-server", daemon=True)
        thread.start()
        yield f"http://{host}:{port}"
    finally:
        if thread is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        else:
            loop.run_until_complete(runner.cleanup())
        loop.close()


if __name__ == "__main__":
    print(*ensure_chromium(), ensure_axe_core(), sep="\n")
