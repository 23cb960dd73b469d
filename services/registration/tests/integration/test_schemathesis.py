"""schemathesis against the registration API's own /openapi.json: for generated requests that
fit the document and requests that do not, no answer is a 5xx, every 4xx is problem+json,
every answer (status, media type, body) is what the document says, and what does not fit the
document is refused.

Two phases, both bounded and repeatable: the coverage phase (schemathesis's deterministic
boundary cases per operation: the documented examples, each limit and one past it, each
required field left out ...; about 1300 requests) and fuzzing (25 derandomized examples per
operation, positive and negative, no example database). A few minutes on a shared 2-core
machine.
"""

from datetime import date

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import OPERATOR_KEY, base_url, service_test_config
from registration.adapters.roster_files import XLSX_MEDIA_TYPE, template_xlsx
from registration.adapters.tables import Base
from registration.demo import seed
from registration.service import RegistrationService

pytestmark = pytest.mark.integration
# A roster upload as a workbook: schemathesis cannot make one from `format: binary`, so it sends
# these (the template, whose example line makes no roster; a broken zip; text that is no
# workbook); the CSV and form bodies it generates itself.
schemathesis.openapi.media_type(
    XLSX_MEDIA_TYPE,
    st.sampled_from([template_xlsx(), b"PK\x03\x04 kapot", b"Roepnaam;Achternaam\nSem;Smit\n"]),
)
EXAMPLES = 25
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def url(broker, tmp_path, container_factory):
    config = service_test_config("registration", broker, f"sqlite:///{tmp_path}/r.db")
    container_factory(RegistrationService, config).start()
    db = DatabaseHandle(make_engine(config["DATABASE_URL"]), Base.metadata)
    seed(db, date.today())  # schools and activities, so generated sign-ups can also succeed
    db.engine.dispose()
    return base_url(config)


def _problem_json_for_4xx(response):
    if 400 <= response.status_code < 500:
        value = response.headers.get("content-type") or [""]  # schemathesis: lists, lower-case
        media_type = (value[0] if isinstance(value, list) else value).split(";")[0]
        assert media_type == "application/problem+json", (response.status_code, response.text)
        assert response.json()["status"] == response.status_code


def test_the_boundary_cases_of_every_operation_get_documented_answers(url):
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        config = schema.config.generation_for(operation=operation)
        for case in schema.iter_coverage_cases(
            operation, generation_modes=modes, generation_config=config
        ):
            response = case.call_and_validate(
                base_url=url, headers=OPERATOR, checks=[*CHECKS, negative_data_rejection]
            )
            _problem_json_for_4xx(response)
            sent += 1
    assert sent > 1000


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_documented_answers(url, mode):
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case):
            response = case.call_and_validate(base_url=url, headers=OPERATOR, checks=checks)
            _problem_json_for_4xx(response)

        answers_as_documented()

    # Only the ops endpoints are outside the document; they answered all along.
    assert requests.get(f"{url}/healthz", timeout=10).ok
