"""A school's IT opens /docs in a real (headless) Chromium: the API page renders from the files
the service itself serves (no CDN; this machine has no internet) and shows the operations.
It finds the class roster upload (POST /activities/{activity_id}/rosters) on the page too.
"""

from datetime import date

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import base_url, service_test_config
from lob_testing.browser import chromium
from registration.adapters.tables import Base
from registration.demo import seed
from registration.service import RegistrationService

pytestmark = pytest.mark.e2e
OPERATIONS = [
    ("post", "/registrations"),
    ("get", "/registrations"),
    ("get", "/schools"),
    ("post", "/activities/{activity_id}/rosters"),
]


@pytest.fixture
def url(broker, tmp_path, container_factory):
    config = service_test_config("registration", broker, f"sqlite:///{tmp_path}/r.db")
    container_factory(RegistrationService, config).start()
    db = DatabaseHandle(make_engine(config["DATABASE_URL"]), Base.metadata)
    seed(db, date.today())
    db.engine.dispose()
    return base_url(config)


def test_the_api_page_renders_offline_and_shows_the_sign_up(url):
    with chromium(width=1280, height=900) as browser:
        browser.get(f"{url}/docs")
        wait = WebDriverWait(browser, 30)
        for method, path in OPERATIONS:
            wait.until(
                expected_conditions.presence_of_element_located(
                    (By.CSS_SELECTOR, f'.opblock-{method} [data-path="{path}"]')
                ),
                f"{method.upper()} {path} on the page",
            )
        sign_up = browser.find_element(
            By.CSS_SELECTOR, '.opblock-post [data-path="/registrations"]'
        )
        sign_up.click()  # opens the operation: its description and schema show
        wait.until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, ".opblock-post.is-open"), "Idempotency-Key"
            )
        )
        assert "LOB regio - registratie-API" in browser.title
        errors = [
            entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
        ]
        assert errors == []  # nothing failed to load (no CDN to reach)
