"""A real headless Chromium for the tests of pages people open: Debian's /usr/bin/chromium,
driven through its chromedriver by Selenium WebDriver.

WebDriver is plain HTTP, so it runs under eventlet's monkey-patching (Playwright's asyncio
driver hangs there). The driver path is given, so Selenium never tries to download one. The
flags keep Chromium off the network it would otherwise try to reach at start-up (this machine
has none), and each browser gets a fresh, empty profile.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = os.environ.get("LOB_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LOB_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=nl-NL",
]


def _installed(path: str, package: str) -> str:
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: install Debian's `{package}` (.ci/run does)")
    return path


@contextmanager
def chromium(width: int = 390, height: int = 844) -> Iterator[Any]:
    """A Selenium WebDriver on headless Chromium; by default a phone-sized window."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lob-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = _installed(CHROMIUM, "chromium")
    for flag in [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    service = Service(executable_path=_installed(CHROMEDRIVER, "chromium-driver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
