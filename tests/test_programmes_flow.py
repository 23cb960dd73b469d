"""Registration and scheduling together: sign-ups over HTTP, a plan, programmes per school."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from nameko.testing.services import entrypoint_hook

from lob_common.db import DatabaseHandle, make_engine
from lob_common.testing import OPERATOR_KEY, base_url, poll, service_test_config
from registration.adapters.tables import Base
from registration.demo import seed
from registration.handlers import issue_school_key
from registration.service import RegistrationService
from scheduling.service import SchedulingService

pytestmark = pytest.mark.integration
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
DAY = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)


@pytest.fixture
def both(broker, tmp_path, container_factory):
    registration_config = service_test_config(
        "registration", broker, f"sqlite:///{tmp_path}/registration.db", RPC_TIMEOUT_SECONDS=2
    )
    registration = container_factory(RegistrationService, registration_config)
    registration.start()
    scheduling = container_factory(
        SchedulingService,
        service_test_config("scheduling", broker, f"sqlite:///{tmp_path}/scheduling.db"),
    )
    scheduling.start()
    db = DatabaseHandle(make_engine(registration_config["DATABASE_URL"]), Base.metadata)
    seed(db, date.today())
    url = base_url(registration_config)
    sessions = [
        {"session_id": f"S{i}", "title": f"Sessie {i}", "capacity": 3, "rounds": [1, 2, 3]}
        for i in range(1, 5)
    ]
    requests.post(
        f"{url}/activities",
        headers=OPERATOR,
        json={
            "id": "vld",
            "kind": "infoday",
            "title": "Voorlichtingsdag",
            "sessions": sessions,
            "starts_at": DAY.isoformat(),
            "ends_at": (DAY + timedelta(hours=3)).isoformat(),
        },
    ).raise_for_status()
    for n, school in enumerate(["farel-college"] * 3 + ["het-element"] * 3):
        requests.post(
            f"{url}/registrations",
            headers=OPERATOR,
            json={
                "activity_id": "vld",
                "first_name": f"Leerling{n}",
                "last_name": "Test",
                "email": f"l{n}@example.nl",
                "date_of_birth": "2009-02-02",
                "school_id": school,
                "choices": ["S1", "S2", "S3"],
                "backup": "S4",
            },
        ).raise_for_status()
    yield url, db, scheduling
    db.engine.dispose()


def _plan(scheduling):
    def planned():
        try:
            with entrypoint_hook(scheduling, "plan_now") as plan_now:
                return plan_now("vld")["people"] == 6
        except LookupError:
            return False  # the sign-ups are still on their way

    poll(planned, what="a plan of all six sign-ups")


def test_a_school_gets_its_own_pupils_programmes_with_names(both):
    url, db, scheduling = both
    key = issue_school_key(db, "farel-college")
    assert (
        requests.get(
            f"{url}/activities/vld/programmes", headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 404
    )
    _plan(scheduling)

    response = requests.get(
        f"{url}/activities/vld/programmes", headers={"Authorization": f"Bearer {key}"}
    )

    assert response.status_code == 200
    programmes = response.json()["programmes"]
    assert {p["school_id"] for p in programmes} == {"farel-college"}
    assert sorted(p["first_name"] for p in programmes) == ["Leerling0", "Leerling1", "Leerling2"]
    for programme in programmes:
        assert len({s["session_id"] for s in programme["sessions"]}) == 3


def test_the_operator_prints_room_lists(both):
    url, _, scheduling = both
    _plan(scheduling)

    response = requests.get(
        f"{url}/activities/vld/room-lists", params={"format": "csv"}, headers=OPERATOR
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text), delimiter=";"))
    assert rows[0] == ["ronde", "sessie", "titel", "aanbieder", "school", "achternaam", "voornaam"]
    assert len(rows) - 1 == 18  # six pupils, three rounds
    assert {r[4] for r in rows[1:]} == {"Farel College", "Het Element"}


def test_when_scheduling_is_down_schools_get_a_clear_503(both):
    url, _, scheduling = both
    scheduling.stop()
    response = requests.get(f"{url}/activities/vld/programmes", headers=OPERATOR)
    assert response.status_code == 503
    assert response.json()["code"] == "scheduling-unavailable"
