"""Registration and scheduling together: sign-ups over HTTP, a plan, programmes per school."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from nameko.testing.services import entrypoint_hook
from sqlalchemy import func, select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import OPERATOR_KEY, base_url, poll, service_test_config
from lob_testing.openapi import OpenApiCheck
from registration.adapters.tables import Base
from registration.demo import seed
from registration.handlers import issue_school_key
from registration.schemas import PlanOut, RoomListsOut
from registration.service import RegistrationService
from scheduling.adapters.tables import Base as SchedulingBase
from scheduling.adapters.tables import SignUp
from scheduling.service import SchedulingService

pytestmark = pytest.mark.integration
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
DAY = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)


@pytest.fixture
def both(broker, tmp_path, container_factory):
    registration_config = service_test_config(
        "registration", broker, f"sqlite:///{tmp_path}/registration.db", RPC_TIMEOUT_SECONDS=5
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


PROGRAMMES = "/activities/{activity_id}/programmes"
ROOM_LISTS = "/activities/{activity_id}/room-lists"


def _document_check(url):
    return OpenApiCheck(requests.get(f"{url}/openapi.json").json())


def test_a_school_gets_its_own_pupils_programmes_with_names(both):
    url, db, scheduling = both
    check = _document_check(url)
    key = issue_school_key(db, "farel-college")
    not_yet = requests.get(
        f"{url}/activities/vld/programmes", headers={"Authorization": f"Bearer {key}"}
    )
    assert not_yet.status_code == 404
    check(not_yet, "GET", PROGRAMMES)
    _plan(scheduling)

    response = requests.get(
        f"{url}/activities/vld/programmes", headers={"Authorization": f"Bearer {key}"}
    )

    assert response.status_code == 200
    assert PlanOut().validate(response.json()) == {}
    check(response, "GET", PROGRAMMES)
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
    assert rows[0] == [
        "ronde",
        "sessie",
        "titel",
        "aanbieder",
        "school",
        "achternaam",
        "voornaam",
        "aanmeldingsnummer",
        "aanwezig",  # empty, to tick and upload back (POST /activities/{id}/attendance)
    ]
    assert {r[8] for r in rows[1:]} == {""}
    assert len(rows) - 1 == 18  # six pupils, three rounds
    assert {r[4] for r in rows[1:]} == {"Farel College", "Het Element"}
    as_json = requests.get(f"{url}/activities/vld/room-lists", headers=OPERATOR)
    assert RoomListsOut().validate(as_json.json()) == {}
    check = _document_check(url)
    check(response, "GET", ROOM_LISTS)
    check(as_json, "GET", ROOM_LISTS)
    check(
        requests.get(f"{url}/activities/nog-niet/room-lists", headers=OPERATOR), "GET", ROOM_LISTS
    )


def test_when_scheduling_is_down_schools_get_a_clear_503(both):
    url, _, scheduling = both
    check = _document_check(url)
    scheduling.stop()
    response = requests.get(f"{url}/activities/vld/programmes", headers=OPERATOR)
    assert response.status_code == 503
    assert response.json()["code"] == "scheduling-unavailable"
    check(response, "GET", PROGRAMMES)


def test_an_orientation_day_seats_by_ranking_and_a_cancellation_promotes_the_first_in_line(both):
    url, _, scheduling = both
    requests.post(
        f"{url}/activities",
        headers=OPERATOR,
        json={
            "id": "od",
            "kind": "orientation_day",
            "title": "MBO oriëntatiedag",
            "workshops": [
                {"workshop_id": "garage", "title": "Autotechniek", "capacity": 1},
                {"workshop_id": "zorg", "title": "Zorg", "capacity": 1},
            ],
            "starts_at": DAY.isoformat(),
            "ends_at": (DAY + timedelta(hours=2)).isoformat(),
        },
    ).raise_for_status()
    ids = []
    for n in range(3):
        response = requests.post(
            f"{url}/registrations",
            headers=OPERATOR,
            json={
                "activity_id": "od",
                "first_name": f"Pupil{n}",
                "last_name": "Test",
                "email": f"od{n}@example.nl",
                "date_of_birth": "2009-02-02",
                "school_id": "farel-college",
                "ranking": ["garage", "zorg"],
            },
        )
        response.raise_for_status()
        ids.append(response.json()["registration_id"])

    poll(lambda: _signed_up_in_scheduling(scheduling, "od") == 3, what="the sign-ups")
    with entrypoint_hook(scheduling, "plan_now") as plan_now:
        assert plan_now("od")["version"] == 1
    plan = requests.get(f"{url}/activities/od/programmes", headers=OPERATOR).json()
    by_id = {p["registration_id"]: p for p in plan["programmes"]}
    assert [by_id[i]["status"] for i in ids] == ["assigned", "assigned", "waitlisted"]
    assert by_id[ids[0]]["workshop"]["workshop_id"] == "garage"  # first come keeps 1st choice
    assert by_id[ids[2]]["waitlist_position"] == 1

    requests.delete(f"{url}/registrations/{ids[0]}", headers=OPERATOR).raise_for_status()

    def promoted():
        plan = requests.get(f"{url}/activities/od/programmes", headers=OPERATOR).json()
        mine = {p["registration_id"]: p for p in plan["programmes"]}
        return plan["plan_version"] > 1 and mine.get(ids[2], {}).get("workshop")

    assert poll(promoted, what="the first in line to get the freed seat")["workshop_id"] == "garage"


def _signed_up_in_scheduling(scheduling, activity_id):
    db = DatabaseHandle(make_engine(scheduling.config["DATABASE_URL"]), SchedulingBase.metadata)
    try:
        with db() as uow:
            return uow.session.scalar(
                select(func.count()).select_from(SignUp).filter_by(activity_id=activity_id)
            )
    finally:
        db.engine.dispose()
