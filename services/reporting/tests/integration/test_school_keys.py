"""A school's key reads its own school's figures from reporting, and nothing more. Reporting
asks registration (which owns the keys) who a key is; when registration does not answer, the
answer is 503, never a guess."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
import requests

from lob_common.contracts import new_event
from lob_common.db import DatabaseHandle, make_engine, migrate
from lob_testing import OPERATOR_KEY, base_url, sample, service_test_config
from registration import auth
from registration import handlers as registration
from registration.adapters.tables import Base as RegistrationBase
from registration.domain.caller import CallerRole
from registration.domain.model import School
from registration.service import MIGRATIONS as REGISTRATION_MIGRATIONS
from registration.service import RegistrationService
from reporting import handlers
from reporting.adapters.tables import Base
from reporting.service import MIGRATIONS, ReportingService

pytestmark = pytest.mark.integration
INFODAY = "2024-11-14T08:45:00+01:00"


def open_db(url, metadata, migrations):
    engine = make_engine(url)
    migrate(engine, migrations)
    return DatabaseHandle(engine, metadata)


def deliver(handler, event_type, **payload):
    event = new_event(event_type, payload)
    return replace(event, handler=handler, occurred_at=datetime(2024, 9, 1, tzinfo=UTC))


@pytest.fixture
def system(broker, tmp_path, container_factory):
    keys_db = open_db(
        f"sqlite:///{tmp_path}/registration.db", RegistrationBase.metadata, REGISTRATION_MIGRATIONS
    )
    for school_id, name in (("farel", "Farel College"), ("atrium", "'t Atrium")):
        registration.register_school(keys_db, School(school_id, name, "vmbo", "Amersfoort"))
    keys = {
        "farel": auth.create_key(keys_db, "farel", CallerRole.SCHOOL, "farel"),
        "website": auth.create_key(keys_db, "site", CallerRole.WEBSITE, None),
    }
    reg = container_factory(
        RegistrationService,
        service_test_config("registration", broker, f"sqlite:///{tmp_path}/registration.db"),
    )
    reg.start()

    facts = open_db(f"sqlite:///{tmp_path}/reporting.db", Base.metadata, MIGRATIONS)
    for school_id, name in (("farel", "Farel College"), ("atrium", "'t Atrium")):
        handlers.record_school(
            facts,
            deliver(
                "reporting.handle_school_registered",
                "school_registered",
                **sample("school_registered", school_id=school_id, name=name),
            ),
        )
    handlers.record_activity(
        facts,
        deliver(
            "reporting.handle_activity_published",
            "activity_published",
            **sample("activity_published", activity_id="vld", kind="infoday", starts_at=INFODAY),
        ),
    )
    sign_ups = [
        deliver(
            "reporting.handle_signed_up",
            "signed_up",
            **sample(
                "signed_up",
                registration_id=f"r{n}",
                person_id=f"p{n}",
                activity_id="vld",
                activity_starts_at=INFODAY,
                school_id="farel" if n < 12 else "atrium",
            ),
        )
        for n in range(20)
    ]
    handlers.record_sign_ups(facts, sign_ups)
    config = service_test_config(
        "reporting",
        broker,
        f"sqlite:///{tmp_path}/reporting.db",
        RPC_TIMEOUT_SECONDS=5,
        KEY_CACHE_SECONDS=0,
    )
    rep = container_factory(ReportingService, config)
    rep.start()
    yield System(base_url(config), keys, keys_db, reg)
    facts.engine.dispose()
    keys_db.engine.dispose()


class System:
    def __init__(self, url, keys, keys_db, registration_container):
        self.url, self.keys, self.keys_db = url, keys, keys_db
        self.registration = registration_container

    def get(self, key, **params):
        return requests.get(
            f"{self.url}/reports/tabel-3a",
            params={"school_year": "2024-2025", **params},
            headers={"Authorization": f"Bearer {key}"},
            timeout=15,
        )


def rows(response):
    return {r["key"]: r["total"] for r in response.json()["sections"][0]["rows"]}


def test_a_schools_key_reads_its_own_schools_figures(system):
    own = system.get(system.keys["farel"])
    named = system.get(system.keys["farel"], school_id="farel", format="csv")

    assert own.status_code == 200, own.text
    assert rows(own) == {"farel": 12}
    assert own.json()["totals"]["total"] == 12
    assert named.status_code == 200
    assert named.text.splitlines()[1:] == ["Farel College;12;12", "TOTAAL;12;12"]


def test_a_school_asking_for_more_than_its_own_gets_403(system):
    other = system.get(system.keys["farel"], school_id="atrium")
    exact = system.get(system.keys["farel"], exact="true")
    website = system.get(system.keys["website"])
    operator = system.get(OPERATOR_KEY, exact="true")

    for refused in (other, exact, website):
        assert refused.status_code == 403
        assert refused.headers["Content-Type"] == "application/problem+json"
    assert "eigen school" in other.json()["detail"]
    assert rows(operator) == {"atrium": 8, "farel": 12}


def test_an_unknown_or_revoked_key_gets_401(system):
    assert system.get("lob_not-a-key").status_code == 401
    assert system.get(system.keys["farel"]).status_code == 200

    auth.revoke_key(system.keys_db, "farel")

    assert system.get(system.keys["farel"]).status_code == 401


def test_when_registration_does_not_answer_a_school_key_gets_503(system):
    system.registration.stop()

    response = system.get(system.keys["farel"])

    assert response.status_code == 503
    assert response.json()["code"] == "registration-unavailable"
    assert response.headers["Retry-After"] == "30"
    assert system.get(OPERATOR_KEY).status_code == 200  # the operator key needs no one
