"""Browser fixtures: one real stack per session (started exactly as Tests/e2e starts it, with
its helpers), and headless Chromium from Debian driven by Selenium through the chromedriver
that `chromium-driver` installs (Selenium Manager never runs: nothing is downloaded).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = REPO_ROOT / "Tests" / "e2e"
sys.path.insert(0, str(E2E_DIR))

import helpers  # noqa: E402  (Tests/e2e/helpers.py)


def _load_e2e_conftest():
    """Tests/e2e/conftest.py under another module name (this file is `conftest` too)."""
    spec = importlib.util.spec_from_file_location("e2e_conftest", E2E_DIR / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


e2e = _load_e2e_conftest()

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
SCREENSHOT_DIR = Path(os.environ.get("SCREENSHOT_DIR", REPO_ROOT / "var" / "screenshots"))

# Runs in every page before its own scripts (CDP injects it, so the page's CSP does not apply):
# keeps the page's WebSockets reachable so a test can kill them, and records alerts.
PAGE_HOOK = """
(() => {
  const Native = window.WebSocket;
  window.__testSockets = [];
  window.__alerts = [];
  window.alert = (m) => { window.__alerts.push(String(m)); };
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__testSockets.push(this); }
  };
})();
"""


@pytest.fixture(scope="session")
def stack():
    overrides = {}
    # For running against binaries built from a tree whose migrations differ from this one.
    if os.environ.get("E2E_MIGRATIONS_DIR"):
        overrides["MIGRATIONS_DIR"] = os.environ["E2E_MIGRATIONS_DIR"]
    running = e2e.start_stack_once("browser", prefix="msgr-browser-", **overrides)
    yield running
    try:
        e2e.stop_stack(running)
    finally:
        e2e.cleanup_stack(running)


@pytest.fixture(scope="session")
def api(stack) -> helpers.Api:
    return helpers.Api(stack.base_url)


def new_driver(width: int = 1200, height: int = 860):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed (Debian: chromium chromium-driver)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--lang=en-US", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PAGE_HOOK})
    driver.execute_cdp_cmd("Network.enable", {})
    return driver


@pytest.fixture(scope="session")
def browsers():
    """Two independent Chromium instances (separate profiles: two people on two machines)."""
    first = new_driver()
    try:
        second = new_driver()
    except BaseException:
        first.quit()
        raise
    yield first, second
    first.quit()
    second.quit()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {SCREENSHOT_DIR}")
    return SCREENSHOT_DIR
