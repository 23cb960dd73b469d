"""The headless Chromium the page tests use starts here and renders a page from 127.0.0.1."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver.common.by import By

from lob_testing.browser import chromium

pytestmark = pytest.mark.e2e


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):
        body = "<!doctype html><title>Toestemming</title><button>Ik geef toestemming</button>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_chromium_renders_a_local_page_and_finds_its_button():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with chromium() as browser:
            browser.get(f"http://127.0.0.1:{server.server_port}/")
            assert browser.title == "Toestemming"
            button = browser.find_element(By.TAG_NAME, "button")
            assert button.is_displayed()
            assert button.text == "Ik geef toestemming"
    finally:
        server.shutdown()
