"""A real Chromium for the web client's tests, through Selenium and the system's chromedriver.

Nothing is downloaded: the browser and its driver are the system's (Debian's
``chromium`` and ``chromium-driver``), and Selenium Manager is kept offline.
Where they are missing, the tests that need them skip and say why.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

WAIT_S = 10.0
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
WEB_URL_RE = r"web client on http://127\.0\.0\.1:(\d+)/"


def find_browser() -> tuple[str, str] | str:
    """(browser, driver) paths, or why there are none."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    browser = next((p for p in map(shutil.which, BROWSER_NAMES) if p), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return "no system Chromium and chromedriver (Debian: chromium, chromium-driver)"
    return browser, driver


class Page:
    """One browser window on the web client."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def by_css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all_css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = condition()
            except Exception:  # an element not there yet, a page mid-reload
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; log: {self.log_texts()}")
            time.sleep(0.05)

    def enter(self, url: str, name: str) -> None:
        self.driver.get(url)
        field = self.wait(lambda: self.by_css("#name-input"), "the name field")
        field.clear()
        field.send_keys(name)
        self.by_css("#login-form button[type=submit]").click()
        self.wait_connected()

    def wait_connected(self, timeout_s: float = WAIT_S) -> None:
        self.wait(lambda: "connected as" in self.by_css("#status").text, "connected", timeout_s)

    def type_line(self, text: str) -> None:
        box = self.by_css("#message")
        box.send_keys(text)
        self.by_css("#send-form button[type=submit]").click()

    def log_texts(self, selector: str = "#log li.message:not(.pending)") -> list[str]:
        try:
            return list(self.js(
                "return [...document.querySelectorAll(arguments[0])]"
                ".map(e => e.querySelector('.text').textContent)", selector))
        except Exception:
            return []

    def wait_texts(self, texts: list[str], timeout_s: float = WAIT_S) -> list[str]:
        """Wait until every text is in the log; returns the log's texts."""
        self.wait(lambda: all(t in self.log_texts() for t in texts), f"messages {texts}",
                  timeout_s)
        return self.log_texts()

    def screenshot(self, path: Path) -> None:
        self.driver.save_screenshot(str(path))


@pytest.fixture
def browser() -> Iterator[Callable[..., Page]]:
    """Factory: ``open(width=1280, height=800) -> Page``; every window is quit at teardown."""
    found = find_browser()
    if isinstance(found, str):
        pytest.skip(found)
    binary, driver_path = found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser
    opened: list[Any] = []
    profiles: list[str] = []

    def open_page(width: int = 1280, height: int = 800, *, phone: bool = False) -> Page:
        profile = tempfile.mkdtemp(prefix="chattycat-chromium-")
        profiles.append(profile)
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                    f"--window-size={width},{height}", "--lang=en-US"):
            options.add_argument(arg)
        if phone:  # a phone's viewport and touch, not just a narrow window
            options.add_experimental_option("mobileEmulation", {
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}})
        try:
            driver = webdriver.Chrome(service=Service(executable_path=driver_path),
                                      options=options)
        except Exception as exc:  # a browser that cannot start here: skip, saying why
            pytest.skip(f"Chromium did not start: {str(exc).splitlines()[0]}")
        driver.set_page_load_timeout(WAIT_S)
        opened.append(driver)
        return Page(driver)

    yield open_page
    for driver in opened:
        with contextlib.suppress(Exception):  # already gone
            driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


def web_port_of(log_match: re.Match[str] | None) -> int:
    assert log_match is not None, "the server logged no web client URL"
    return int(log_match.group(1))
