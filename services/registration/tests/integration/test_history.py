"""Loading a finished season through the API: schools and institutions (PUT /schools/{id}),
past activities published as historical, and their anonymous participants (POST
/activities/{id}/history), idempotent by the caller's key, on SQLite and PostgreSQL."""

from datetime import date

import pytest
import requests

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import OPERATOR_KEY, base_url, service_test_config
from registration.adapters.tables import Base, HistoricalParticipant
from registration.demo import seed
from registration.handlers import export_participation
from registration.service import RegistrationService

pytestmark = pytest.mark.integration
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
BUS_TOUR = {
    "id": "lob-bustour-2024-10",
    "kind": "bus_tour",
    "title": "LOB-bustour naar het MBO",
    "starts_at": "2024-10-17T08:30:00+02:00",
    "ends_at": "2024-10-17T16:00:00+02:00",
    "buses": [{"bus_id": "bus-1", "seats": 50}],
    "historical": True,
}


class Season:
    def __init__(self, url, db):
        self.url, self.db = url, db

    def call(self, method, path, **kwargs):
        return requests.request(method, f"{self.url}{path}", headers=OPERATOR, timeout=30, **kwargs)

    def load(self, activity_id, *rows):
        return self.call("POST", f"/activities/{activity_id}/history", json={"participants": rows})

    def outbox(self, event_type):
        outbox = self.db.metadata.tables["outbox"]
        with self.db.engine.connect() as connection:
            return [
                r.body.get("payload", r.body)
                for r in connection.execute(
                    outbox.select().where(outbox.c.event_type == event_type).order_by(outbox.c.id)
                )
            ]

    def records(self):
        with self.db() as uow:
            return uow.session.query(HistoricalParticipant).count()


@pytest.fixture
def season(broker, database_url, container_factory):
    config = service_test_config("registration", broker, database_url)
    container_factory(RegistrationService, config).start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    seed(db, date.today())
    found = Season(base_url(config), db)
    assert found.call("POST", "/activities", json=BUS_TOUR).status_code == 201
    yield found
    db.engine.dispose()


def professional(key, school_id="farel-college", **changes):
    return {"key": key, "role": "professional", "school_id": school_id, "attended": True, **changes}


def test_a_past_activity_is_published_as_historical_and_announced_so(season):
    shown = season.call("GET", "/activities/lob-bustour-2024-10").json()
    [announced] = season.outbox("activity_published")[-1:]

    assert shown["historical"] is True
    assert announced["historical"] is True


def test_an_activity_still_to_come_cannot_be_historical(season):
    future = {**BUS_TOUR, "id": "later", "starts_at": "2099-10-17T08:30:00+02:00"}
    future["ends_at"] = "2099-10-17T16:00:00+02:00"

    answer = season.call("POST", "/activities", json=future)

    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["historical"]
    assert season.call("GET", "/activities/later").status_code == 404


def test_participants_are_loaded_once_and_a_second_load_changes_nothing(season):
    rows = [professional(f"k{n}") for n in range(3)] + [professional("k3", school_id=None)]

    first = season.load("lob-bustour-2024-10", *rows)
    again = season.load("lob-bustour-2024-10", *rows)

    assert first.status_code == again.status_code == 200
    assert first.json() == {
        "activity_id": "lob-bustour-2024-10",
        "received": 4,
        "recorded": 4,
        "corrected": 0,
        "unchanged": 0,
        "participants": 4,
    }
    assert again.json()["recorded"] == 0 and again.json()["unchanged"] == 4
    events = season.outbox("participation_imported")
    assert len(events) == 4  # the second load announced nothing
    assert {e["school_id"] for e in events} == {"farel-college", None}
    assert all(e["attended"] is True and "first_name" not in e for e in events)
    assert season.outbox("signed_up") == []  # nobody is mailed: no sign-up happened


def test_a_changed_field_corrects_the_record_and_is_announced_again(season):
    season.load("lob-bustour-2024-10", professional("k1"))

    fixed = season.load("lob-bustour-2024-10", professional("k1", attended=False))

    assert fixed.json()["corrected"] == 1 and fixed.json()["participants"] == 1
    first, second = season.outbox("participation_imported")
    assert first["record_id"] == second["record_id"] and second["attended"] is False


def test_a_list_with_a_bad_row_is_refused_whole_and_says_which_row(season):
    answer = season.load(
        "lob-bustour-2024-10",
        professional("k1"),
        professional("k2", school_id="no-such-school"),
        {"key": "k3", "role": "pupil", "school_id": "farel-college"},  # a bus tour for staff
        professional("k1"),
    )

    assert answer.status_code == 422
    assert answer.headers["Content-Type"] == "application/problem+json"
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"participants.1.school_id", "participants.2.role", "participants.3.key"}
    assert season.records() == 0


def test_a_pupils_age_is_kept_as_its_band_and_phase_and_place_come_from_the_school(season):
    infoday = {
        "id": "voorlichtingsdag-2024",
        "kind": "infoday",
        "title": "Voorlichtingsdag MBO-beroepen",
        "starts_at": "2024-11-14T08:45:00+01:00",
        "ends_at": "2024-11-14T12:00:00+01:00",
        "sessions": [{"session_id": "S01", "title": "Zorg", "capacity": 60, "rounds": [1]}],
        "historical": True,
    }
    season.call("POST", "/activities", json=infoday)

    season.load(
        "voorlichtingsdag-2024",
        {"key": "p1", "role": "pupil", "school_id": "farel-college", "age": 15},
    )

    [event] = season.outbox("participation_imported")
    assert (event["age_band"], event["phase"], event["municipality"]) == (
        "12-15",
        "vo",
        "Amersfoort",
    )
    assert "age" not in event
    facts = [f for f in export_participation(season.db)["facts"] if f["person_id"] is None]
    assert [(f["activity_id"], f["age_band"]) for f in facts] == [
        ("voorlichtingsdag-2024", "12-15")
    ]


def test_current_activities_take_sign_ups_not_history(season):
    current = {**BUS_TOUR, "id": "bus-2099", "historical": False}
    current["starts_at"], current["ends_at"] = (
        "2099-10-17T08:30:00+02:00",
        "2099-10-17T16:00:00+02:00",
    )
    season.call("POST", "/activities", json=current)

    answer = season.load("bus-2099", professional("k1"))
    unknown = season.load("no-such-activity", professional("k1"))

    assert answer.status_code == 409
    assert answer.json()["code"] == "activity-not-historical"
    assert unknown.status_code == 404


def test_a_school_is_registered_and_changed_through_the_api(season):
    school = {"name": "Overige instellingen", "kind": "other", "municipality": None}

    created = season.call("PUT", "/schools/overige-instellingen", json=school)
    same = season.call("PUT", "/schools/overige-instellingen", json=school)
    moved = season.call(
        "PUT", "/schools/overige-instellingen", json={**school, "municipality": "Soest"}
    )
    bad = season.call("PUT", "/schools/Niet Goed", json={"name": "", "kind": "kasteel"})

    assert (created.status_code, same.status_code, moved.status_code) == (201, 200, 200)
    assert created.json() == {
        "id": "overige-instellingen",
        "name": "Overige instellingen",
        "kind": "other",
        "municipality": None,
    }
    announced = [
        e for e in season.outbox("school_registered") if e["school_id"] == "overige-instellingen"
    ]
    assert [e["municipality"] for e in announced] == [None, "Soest"]
    assert bad.status_code == 422
    listed = season.call("GET", "/schools").json()["schools"]
    assert {
        "id": "overige-instellingen",
        "name": "Overige instellingen",
        "kind": "other",
        "municipality": "Soest",
    } in listed
