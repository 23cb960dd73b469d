"""Defects found from outside (schemathesis and a new user's tries), each as the user met it:
numbers and dates out of range, retries with a reused key, forged log lines, odd names, the
wrong audience, unknown addresses, and sign-ups that arrive at the same moment."""

import logging
from datetime import UTC, date, datetime, timedelta

import eventlet
import pytest
import requests
from sqlalchemy import func, select

from lob_common.db import DatabaseHandle, make_engine
from lob_common.logging import CorrelationFilter, JsonFormatter, TextFormatter
from lob_testing import OPERATOR_KEY, base_url, service_test_config
from lob_testing.openapi import OpenApiCheck
from registration.adapters.tables import Base, Person, Registration
from registration.demo import seed
from registration.service import RegistrationService

pytestmark = pytest.mark.integration
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)


@pytest.fixture
def api(broker, database_url, container_factory):
    config = service_test_config("registration", broker, database_url)
    container_factory(RegistrationService, config).start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    seed(db, date.today())
    url = base_url(config)
    assert post(url, "/activities", event()).status_code == 201
    yield url, db
    db.engine.dispose()


def post(url, path, body, headers=None, **kwargs):
    return requests.post(
        f"{url}{path}", json=body, headers={**OPERATOR, **(headers or {})}, timeout=30, **kwargs
    )


def event(**changes):
    return {
        "id": "loopbaan",
        "kind": "career_event",
        "title": "Loopbaanevenement",
        "starts_at": SOON.isoformat(),
        "ends_at": (SOON + timedelta(hours=2)).isoformat(),
        **changes,
    }


def pupil(**changes):
    return {
        "activity_id": "loopbaan",
        "first_name": "Sanne",
        "last_name": "de Vries",
        "email": "sanne@example.nl",
        "date_of_birth": "2009-03-14",
        "school_id": "farel-college",
        **changes,
    }


def count(db, model):
    with db() as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def test_a_capacity_beyond_any_room_is_a_field_error_not_a_crash(api):
    url, _ = api
    huge = post(url, "/activities", event(id="groot", capacity=99999999999999999999))
    session = post(
        url,
        "/activities",
        event(
            id="vld",
            kind="infoday",
            sessions=[{"session_id": "S1", "title": "S", "capacity": 10**12, "rounds": [1]}],
        ),
    )

    assert huge.status_code == 422, huge.text
    assert [e["field"] for e in huge.json()["errors"]] == ["capacity"]
    assert session.status_code == 422
    assert [e["field"] for e in session.json()["errors"]] == ["sessions.0.capacity"]
    assert requests.get(f"{url}/activities/groot", headers=OPERATOR).status_code == 404


def test_an_activity_in_the_middle_ages_is_refused_and_the_catalogue_keeps_its_schema(api):
    url, _ = api
    check = OpenApiCheck(requests.get(f"{url}/openapi.json").json())

    old = post(url, "/activities", event(id="oud", starts_at="1204-06-02T10:00:00"))
    last = post(url, "/activities", event(id="laatst", ends_at="9999-12-31T23:30:00-05:00"))
    listed = requests.get(f"{url}/activities", headers=OPERATOR)

    assert old.status_code == 422
    assert [e["field"] for e in old.json()["errors"]] == ["starts_at"]
    assert last.status_code == 422  # not an OverflowError on the way to Amsterdam time
    assert [e["field"] for e in last.json()["errors"]] == ["ends_at"]
    check(listed, "GET", "/activities")
    assert "+00:19:32" not in listed.text


def test_the_document_says_what_each_role_must_send(api):
    url, _ = api
    schemas = requests.get(f"{url}/openapi.json").json()["components"]["schemas"]

    variants = {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["SignUpIn"]["oneOf"]}
    pupil_variant = schemas["SignUpPupilIn"]

    assert variants == {"SignUpPupilIn", "SignUpYoungAdultIn", "SignUpProfessionalIn"}
    assert {"date_of_birth", "school_id"} <= set(pupil_variant["required"])
    assert "date_of_birth" in schemas["SignUpYoungAdultIn"]["required"]
    assert "date_of_birth" not in schemas["SignUpProfessionalIn"]["required"]
    for name, prop in pupil_variant["properties"].items():
        assert prop.get("description") and "example" in prop, name
    assert schemas["ActivityIn"]["properties"]["capacity"]["maximum"] == 100_000


def test_the_same_idempotency_key_with_another_body_is_refused_by_name(api):
    url, db = api
    key = {"Idempotency-Key": "site-77"}
    first = post(url, "/registrations", pupil(), key)
    other = post(url, "/registrations", pupil(first_name="Daan", email="daan@example.nl"), key)
    same = post(url, "/registrations", pupil(), key)

    assert first.status_code == 201
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency-key-reused"
    assert "site-77" in other.json()["detail"]
    assert same.status_code == 200
    assert same.json()["registration_id"] == first.json()["registration_id"]
    assert count(db, Registration) == 1


def test_a_newline_in_the_address_forges_no_log_line_and_each_request_is_logged_once(api, caplog):
    url, _ = api
    caplog.set_level(logging.INFO)
    requests.get(f"{url}/registrations/x%0A2026-01-01 INFO forged", headers=OPERATOR)
    requests.get(f"{url}/nergens%0Aforged", headers=OPERATOR)

    logged = [  # as the services' logging config lets them through
        r for r in caplog.records if "forged" in r.getMessage() and CorrelationFilter().filter(r)
    ]
    assert len(logged) == 2, [r.getMessage() for r in logged]  # ours only, not eventlet's too
    assert {r.name for r in logged} == {"lob_common.providers"}
    for form in (TextFormatter(), JsonFormatter()):
        assert all("\n" not in form.format(r) and "\\n" in form.format(r) for r in logged)


def test_names_of_only_spaces_are_refused(api):
    url, db = api
    response = post(url, "/registrations", pupil(first_name="    ", last_name=" Jansen "))

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["first_name"]
    assert post(url, "/registrations", pupil(last_name=" Jansen ")).status_code == 201
    with db() as uow:
        assert uow.session.scalar(select(Person.last_name)) == "Jansen"


def test_a_pupil_cannot_sign_up_for_a_decanenkring(api):
    url, _ = api
    response = post(url, "/registrations", pupil(activity_id="decanenkring-1"))

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "role"
    assert "professionals" in error["message"]


def test_the_programmes_of_an_unknown_activity_are_not_found(api):
    url, _ = api
    response = requests.get(f"{url}/activities/nope/programmes", headers=OPERATOR)

    assert response.status_code == 404
    assert response.json()["code"] == "not-found"
    assert "nope" in response.json()["detail"]


def test_a_birth_date_in_the_future_is_the_only_error_named(api):
    url, _ = api
    # Two days: "today" in Amsterdam can already be tomorrow on a machine that runs on UTC.
    later = (date.today() + timedelta(days=2)).isoformat()
    response = post(url, "/registrations", pupil(date_of_birth=later))

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "date_of_birth", "message": "De geboortedatum ligt in de toekomst."}
    ]


def test_unknown_addresses_methods_and_oversized_bodies_answer_problem_json(api):
    url, db = api
    nowhere = requests.get(f"{url}/nergens", headers=OPERATOR)
    wrong_method = requests.put(f"{url}/activities", headers=OPERATOR, json={})
    oversized = requests.post(
        f"{url}/registrations",
        data=b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}',
        headers={**OPERATOR, "Content-Type": "application/json"},
    )

    for response, status in ((nowhere, 404), (wrong_method, 405), (oversized, 413)):
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == status
    assert set(wrong_method.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert count(db, Registration) == 0


def _at_once(n, send):
    pool = eventlet.GreenPool(n)
    return list(pool.imap(lambda _: send(), range(n)))


def test_identical_sign_ups_at_once_make_one(api):
    url, db = api
    answers = _at_once(8, lambda: post(url, "/registrations", pupil()))

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 7, [r.text for r in answers if r.status_code >= 500]
    assert count(db, Registration) == 1
    assert count(db, Person) == 1


def test_the_same_idempotency_key_at_once_gives_one_sign_up_and_no_error(api):
    url, db = api
    key = {"Idempotency-Key": "retry-storm"}
    answers = _at_once(8, lambda: post(url, "/registrations", pupil(), key))

    assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
    assert len({r.json()["registration_id"] for r in answers}) == 1
    assert count(db, Registration) == 1
