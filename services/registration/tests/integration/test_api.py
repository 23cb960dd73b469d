"""The registration HTTP API as schools and the website use it, on SQLite and PostgreSQL."""

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import eventlet
import pytest
import requests
from kombu import Connection
from nameko.testing.services import entrypoint_hook
from nameko.web.handlers import HttpRequestHandler
from sqlalchemy import func, select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import OPERATOR_KEY, TcpProxy, base_url, poll, service_test_config
from lob_testing.openapi import OpenApiCheck
from registration.adapters.tables import Base, Person, Registration
from registration.demo import SCHOOLS, seed
from registration.domain.model import School
from registration.handlers import issue_school_key, register_school
from registration.schemas import ActivityListOut, ProblemOut, RegistrationOut
from registration.service import PageHandler, RegistrationService

pytestmark = pytest.mark.integration
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SOON = datetime.now(UTC) + timedelta(days=30)
EXAMPLES = Path(__file__).resolve().parents[4] / "docs" / "examples"


@pytest.fixture
def api(broker, database_url, container_factory):
    config = service_test_config("registration", broker, database_url)
    container = container_factory(RegistrationService, config)
    container.start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    seed(db, date.today())
    url = base_url(config)
    publish(url, career_event())
    yield Api(url, db, container)
    db.engine.dispose()


class Api:
    def __init__(self, url, db, container):
        self.url, self.db, self.container = url, db, container

    def sign_up(self, body, headers=OPERATOR, **kwargs):
        return requests.post(f"{self.url}/registrations", json=body, headers=headers, **kwargs)

    def count(self, model):
        with self.db() as uow:
            return uow.session.scalar(select(func.count()).select_from(model))

    def outbox(self, event_type="signed_up"):
        outbox = self.db.metadata.tables["outbox"]
        with self.db.engine.connect() as connection:
            return [
                row.body
                for row in connection.execute(
                    select(outbox.c.body)
                    .where(outbox.c.event_type == event_type)
                    .order_by(outbox.c.id)
                )
            ]


def career_event(**changes):
    activity = {
        "id": "loopbaanevenement-test",
        "kind": "career_event",
        "title": "Loopbaanevenement",
        "starts_at": SOON.isoformat(),
        "ends_at": (SOON + timedelta(hours=2)).isoformat(),
        "location": "Amersfoort",
    }
    return {**activity, **changes}


def closed_event():
    """An activity tomorrow whose sign-up closed an hour ago."""
    now = datetime.now(UTC)
    return career_event(
        id="gesloten",
        sign_up_closes_at=(now - timedelta(hours=1)).isoformat(),
        starts_at=(now + timedelta(days=1)).isoformat(),
        ends_at=(now + timedelta(days=1, hours=2)).isoformat(),
    )


def publish(url, activity):
    response = requests.post(f"{url}/activities", json=activity, headers=OPERATOR)
    assert response.status_code in (200, 201), response.text
    return response


def pupil(**changes):
    body = {
        "activity_id": "loopbaanevenement-test",
        "first_name": "Sanne",
        "last_name": "de Vries",
        "email": "sanne@example.nl",
        "date_of_birth": "2009-03-14",
        "school_id": "farel-college",
        "school_year": 4,
    }
    return {**body, **changes}


def _sessions():
    return [
        {"session_id": f"S{i}", "title": f"Sessie {i}", "capacity": 30, "rounds": [1, 2, 3]}
        for i in range(1, 6)
    ]


def test_a_pupil_signs_up_and_the_event_carries_no_personal_data(api):
    response = api.sign_up(pupil())

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "signed_up"
    assert body["school_id"] == "farel-college"
    assert response.headers["Location"] == f"/registrations/{body['registration_id']}"
    [event] = api.outbox()
    assert event["payload"]["registration_id"] == body["registration_id"]
    assert event["payload"]["phase"] == "vo"
    assert event["payload"]["municipality"] == "Amersfoort"
    text = str(event)
    for personal in ("Sanne", "de Vries", "sanne@example.nl", "2009-03-14"):
        assert personal not in text


def test_every_bad_field_is_named_and_nothing_is_stored(api):
    response = api.sign_up(
        {"activity_id": 5, "email": "geen-adres", "school_year": 9, "shoe_size": 42}
    )

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    fields = {e["field"] for e in problem["errors"]}
    assert fields >= {
        "activity_id",
        "email",
        "school_year",
        "shoe_size",
        "first_name",
        "last_name",
        "date_of_birth",
    }
    assert all(e["message"] for e in problem["errors"])
    assert problem["title"] == "De invoer klopt niet"
    assert api.count(Person) == 0
    assert api.count(Registration) == 0
    assert api.outbox() == []


def test_malformed_json_and_wrong_content_type_are_refused_plainly(api):
    broken = requests.post(
        f"{api.url}/registrations",
        data="{oops",
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.json()["code"] == "malformed-json"

    form = requests.post(
        f"{api.url}/registrations",
        data="a=b",
        headers={**OPERATOR, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    assert api.count(Registration) == 0


def test_a_pupil_without_a_school_is_refused_when_the_operator_signs_up(api):
    response = api.sign_up(pupil(school_id=None))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["school_id"]


def test_an_unknown_activity_is_named(api):
    response = api.sign_up(pupil(activity_id="bestaat-niet"))

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "activity_id", "message": "Onbekende activiteit: bestaat-niet."}
    ]
    assert api.count(Registration) == 0


def test_a_bad_email_an_unknown_activity_and_an_unknown_school_are_named_at_once(api):
    response = api.sign_up(
        pupil(email="geen-adres", activity_id="bestaat-niet", school_id="bestaat-ook-niet")
    )

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert sorted(errors, key=lambda e: e["field"]) == [
        {"field": "activity_id", "message": "Onbekende activiteit: bestaat-niet."},
        {"field": "email", "message": "Geen geldig e-mailadres."},
        {"field": "school_id", "message": "Onbekende school: bestaat-ook-niet."},
    ]
    assert api.count(Person) == 0
    assert api.count(Registration) == 0
    assert api.outbox() == []


def test_a_missing_field_a_missing_school_and_a_missing_consent_are_named_at_once(api):
    young = (date.today() - timedelta(days=14 * 366)).isoformat()
    body = pupil(school_id=None, date_of_birth=young)
    del body["last_name"]

    response = api.sign_up(body)

    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["last_name", "parent_email", "school_id"]
    assert api.count(Person) == 0
    assert api.outbox() == []


def test_info_day_choices_are_checked_alongside_a_bad_email(api):
    publish(api.url, career_event(id="infodag", kind="infoday", sessions=_sessions()))

    response = api.sign_up(
        pupil(activity_id="infodag", email="geen-adres", choices=["S1", "S2"], backup="S9")
    )

    assert response.status_code == 422
    assert [(e["field"], e["message"]) for e in response.json()["errors"]] == [
        ("email", "Geen geldig e-mailadres."),
        ("choices", "Kies precies 3 voorlichtingen."),
        ("backup", "Onbekende voorlichting: S9."),
    ]
    assert api.count(Registration) == 0


def test_a_field_the_schema_refused_is_named_once(api):
    publish(api.url, career_event(id="infodag", kind="infoday", sessions=_sessions()))
    young = (date.today() - timedelta(days=14 * 366)).isoformat()

    response = api.sign_up(
        pupil(
            activity_id="infodag",
            date_of_birth=young,
            parent_email="geen-adres",
            choices=["S1", "", "S3"],
            backup="S4",
        )
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "parent_email", "message": "Geen geldig e-mailadres."},
        {"field": "choices.1", "message": "Lengte moet tussen 1 en 64 liggen."},
    ]


def test_field_errors_come_before_a_closed_sign_up(api):
    publish(api.url, closed_event())

    response = api.sign_up(pupil(activity_id="gesloten", school_id="bestaat-niet"))

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["school_id"]


def test_another_schools_pupil_is_forbidden_before_the_fields_are_checked(api):
    key = issue_school_key(api.db, "farel-college")

    response = api.sign_up(
        pupil(email="geen-adres", activity_id="bestaat-niet", school_id="het-element"),
        headers={"Authorization": f"Bearer {key}"},
    )

    assert response.status_code == 403
    assert api.count(Registration) == 0


def test_without_a_valid_key_nothing_happens(api):
    assert api.sign_up(pupil(), headers={}).status_code == 401
    assert api.sign_up(pupil(), headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.count(Registration) == 0


def test_a_school_key_signs_up_only_its_own_pupils(api):
    key = issue_school_key(api.db, "farel-college")
    school = {"Authorization": f"Bearer {key}"}

    own = api.sign_up(pupil(school_id=None), headers=school)
    other = api.sign_up(pupil(email="b@example.nl", school_id="het-element"), headers=school)
    other_school = {"Authorization": f"Bearer {issue_school_key(api.db, 'het-element')}"}
    peek = requests.get(
        f"{api.url}/registrations/{own.json()['registration_id']}", headers=other_school
    )

    assert own.status_code == 201 and own.json()["school_id"] == "farel-college"
    assert other.status_code == 403
    assert peek.status_code == 404


def test_a_repeated_request_with_the_same_idempotency_key_signs_up_once(api):
    headers = {**OPERATOR, "Idempotency-Key": "website-42"}
    first = api.sign_up(pupil(), headers=headers)
    again = api.sign_up(pupil(), headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["registration_id"] == first.json()["registration_id"]
    assert len(api.outbox()) == 1


def test_the_same_person_twice_is_a_conflict(api):
    assert api.sign_up(pupil()).status_code == 201
    second = api.sign_up(pupil())
    assert second.status_code == 409
    assert "Sanne" not in second.text  # no personal data in errors (they reach the logs)
    assert len(api.outbox()) == 1


def test_a_pupil_on_a_second_activity_is_the_same_person_as_the_latest_sign_up_describes(api):
    publish(api.url, career_event(id="tweede-evenement"))
    first = api.sign_up(pupil(school_year=3, municipality="Leusden")).json()
    second = api.sign_up(pupil(activity_id="tweede-evenement", school_year=4)).json()
    another_school = api.sign_up(pupil(school_id="het-element")).json()

    assert second["person_id"] == first["person_id"]
    assert another_school["person_id"] != first["person_id"]
    with api.db() as uow:
        person = uow.session.get(Person, first["person_id"])
        assert (person.school_year, person.municipality) == (4, "Amersfoort")  # the school's
    [_, later, _] = api.outbox()
    assert (later["payload"]["person_id"], later["payload"]["school_year"]) == (
        first["person_id"],
        4,
    )


def test_under_sixteen_needs_a_parent_address_and_consent(api):
    young = pupil(date_of_birth=(date.today() - timedelta(days=14 * 366)).isoformat())

    refused = api.sign_up(young)
    accepted = api.sign_up({**young, "parent_email": "ouder@example.nl"})

    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["parent_email"]
    assert accepted.status_code == 201
    assert accepted.json()["consent"] == "pending"
    assert accepted.json()["status"] == "pending_consent"
    # the parent is asked first: nobody plans, counts or confirms it yet (docs/consent.md)
    assert api.outbox() == []
    [asked] = api.outbox("consent_requested")
    assert asked["payload"]["registration_id"] == accepted.json()["registration_id"]


def test_a_closed_sign_up_is_refused(api):
    publish(api.url, closed_event())

    response = api.sign_up(pupil(activity_id="gesloten"))

    assert response.status_code == 409
    assert response.json()["code"] == "sign-up-closed"


def test_info_day_choices_are_checked(api):
    publish(api.url, career_event(id="infodag", kind="infoday", sessions=_sessions()))

    same_backup = api.sign_up(pupil(activity_id="infodag", choices=["S1", "S2", "S3"], backup="S2"))
    fine = api.sign_up(pupil(activity_id="infodag", choices=["S1", "S2", "S3"], backup="S4"))

    assert same_backup.status_code == 422
    assert same_backup.json()["errors"][0]["field"] == "backup"
    assert fine.status_code == 201
    preferences = api.outbox()[0]["payload"]["preferences"]
    assert (preferences["choices"], preferences["backup"]) == (["S1", "S2", "S3"], "S4")


def test_activities_are_published_as_events_and_listed(api):
    listed = requests.get(f"{api.url}/activities", headers=OPERATOR).json()["activities"]
    assert "loopbaanevenement-test" in {a["id"] for a in listed}
    published = {e["payload"]["activity_id"] for e in api.outbox("activity_published")}
    assert {"loopbaanevenement-test", "voorlichtingsdag", "orientatiedag-1"} <= published


def test_only_the_operator_publishes_activities(api):
    key = issue_school_key(api.db, "farel-college")
    response = requests.post(
        f"{api.url}/activities",
        json=career_event(id="x"),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 403


def test_notifications_get_the_contact_by_rpc_and_nothing_after_erasure(api):
    registration = api.sign_up(pupil()).json()
    with entrypoint_hook(api.container, "contact") as contact:
        found = contact(registration["registration_id"])
    assert found["email"] == "sanne@example.nl"
    assert found["activity"]["title"] == "Loopbaanevenement"

    erased = requests.delete(f"{api.url}/persons/{registration['person_id']}", headers=OPERATOR)

    assert erased.status_code == 204
    with entrypoint_hook(api.container, "contact") as contact:
        assert contact(registration["registration_id"]) is None
    assert api.count(Person) == 0
    assert api.count(Registration) == 0
    [event] = api.outbox("person_erased")
    assert event["payload"]["person_id"] == registration["person_id"]
    again = requests.delete(f"{api.url}/persons/{registration['person_id']}", headers=OPERATOR)
    assert again.status_code == 404


def test_only_the_operator_erases(api):
    registration = api.sign_up(pupil()).json()
    key = issue_school_key(api.db, "farel-college")
    refused = requests.delete(
        f"{api.url}/persons/{registration['person_id']}", headers={"Authorization": f"Bearer {key}"}
    )
    assert refused.status_code == 403
    assert api.count(Person) == 1


def test_a_cancellation_is_announced_once_and_frees_the_person_to_sign_up_again(api):
    registration = api.sign_up(pupil()).json()
    url = f"{api.url}/registrations/{registration['registration_id']}"

    first = requests.delete(url, headers=OPERATOR, params={"reason": "ziek"})
    second = requests.delete(url, headers=OPERATOR)

    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "cancelled"
    [event] = api.outbox("sign_up_cancelled")
    assert event["payload"]["reason"] == "ziek"
    assert api.sign_up(pupil()).status_code == 201


def test_a_school_cannot_cancel_another_schools_pupil(api):
    registration = api.sign_up(pupil()).json()
    key = issue_school_key(api.db, "het-element")
    response = requests.delete(
        f"{api.url}/registrations/{registration['registration_id']}",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 404
    assert api.outbox("sign_up_cancelled") == []


def test_a_schools_it_finds_its_school_id_with_its_own_key(api):
    key = issue_school_key(api.db, "farel-college")

    listed = requests.get(f"{api.url}/schools", headers={"Authorization": f"Bearer {key}"})
    anonymous = requests.get(f"{api.url}/schools")

    assert listed.status_code == 200
    schools = {s["id"]: s for s in listed.json()["schools"]}
    assert len(schools) == len(SCHOOLS)
    assert schools["de-baander"] == {
        "id": "de-baander",
        "name": "De Baander Praktijkonderwijs",
        "kind": "pro",
        "municipality": "Amersfoort",
    }
    assert "api_key_hash" not in listed.text
    assert anonymous.status_code == 401


def test_every_school_is_announced_when_new_or_changed_and_only_then(api):
    announced = {e["payload"]["school_id"] for e in api.outbox("school_registered")}
    assert announced == {ident for ident, *_ in SCHOOLS}

    seed(api.db, date.today())  # the same schools again: nothing new to say
    changed = register_school(api.db, School("farel-college", "Farel College", "vmbo", "Soest"))

    assert changed
    events = api.outbox("school_registered")
    assert len(events) == len(SCHOOLS) + 1
    assert events[-1]["payload"] == {
        "school_id": "farel-college",
        "name": "Farel College",
        "kind": "vmbo",
        "municipality": "Soest",
    }


def test_health_readiness_and_metrics(api):
    assert requests.get(f"{api.url}/healthz").json()["status"] == "alive"
    ready = requests.get(f"{api.url}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    api.sign_up(pupil())
    metrics = requests.get(f"{api.url}/metrics").text
    assert 'lob_sign_ups_total{activity_kind="career_event",role="pupil"}' in metrics


def test_with_the_broker_away_at_start_it_is_not_ready_but_keeps_every_sign_up(
    broker, tmp_path, container_factory
):
    proxy = TcpProxy(5672)
    config = service_test_config("registration", proxy.url(broker), f"sqlite:///{tmp_path}/r.db")
    container = container_factory(RegistrationService, config)
    starting = eventlet.spawn(container.start)  # start() waits for the broker; HTTP serves already
    url = base_url(config)
    db = DatabaseHandle(make_engine(config["DATABASE_URL"]), Base.metadata)
    try:
        poll(lambda: _status(f"{url}/readyz") == 503, what="readiness to say 503")
        # The broker check is cached for 2 s per process: an earlier test's "ok" may still be
        # there while the consumer alone makes it 503.
        poll(
            lambda: _readiness(url)["checks"]["broker"].startswith("unreachable"),
            what="readiness to name the broker as unreachable",
        )
        assert _readiness(url)["ready"] is False
        seed(db, date.today())
        publish(url, career_event())
        accepted = requests.post(f"{url}/registrations", json=pupil(), headers=OPERATOR)
        assert accepted.status_code == 201

        proxy.open()
        poll(
            lambda: _status(f"{url}/readyz") == 200,
            timeout=30,
            what="ready once the broker is back",
        )
        poll(
            lambda: _queued(broker, "evt-registration-signed_up--scheduling.handle_signed_up"),
            timeout=30,
            what="the sign-up made while away to reach scheduling's queue",
        )
    finally:
        if not proxy.is_open:
            proxy.open()
        starting.wait()
        container.stop()  # while the broker is reachable, so the consumer can leave cleanly
        proxy.close()
        db.engine.dispose()


def _status(url):
    try:
        return requests.get(url, timeout=5).status_code
    except requests.ConnectionError:
        return None


def _readiness(url):
    return requests.get(f"{url}/readyz", timeout=5).json()


def _queued(amqp_uri, queue):
    with Connection(amqp_uri) as connection:
        try:
            return connection.default_channel.queue_declare(queue, passive=True).message_count
        except Exception:  # noqa: BLE001 - not declared yet
            return 0


def test_every_path_and_response_is_what_the_openapi_document_says(api):
    document = requests.get(f"{api.url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    check = OpenApiCheck(document)
    assert check.operations() == _routes(api.container), "the document lists every route"
    farel = {"Authorization": f"Bearer {issue_school_key(api.db, 'farel-college')}"}
    nobody = {"Authorization": "Bearer wrong"}
    url = api.url

    def call(method, path, *, template=None, headers=OPERATOR, **kwargs):
        response = requests.request(method, f"{url}{path}", headers=headers, **kwargs)
        check(response, method, template or path)
        return response

    created = call(
        "POST", "/registrations", json=pupil(), headers={**OPERATOR, "Idempotency-Key": "k"}
    )
    call("POST", "/registrations", json=pupil(), headers={**OPERATOR, "Idempotency-Key": "k"})
    refused = call("POST", "/registrations", json={})
    call("POST", "/registrations", json=pupil())  # 409 already signed up
    call("POST", "/registrations", json=pupil(school_id="het-element"), headers=farel)
    call("POST", "/registrations", json=pupil(), headers=nobody)
    call(
        "POST",
        "/registrations",
        data="{oops",
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    call("POST", "/registrations", data="a=b", headers={**OPERATOR, "Content-Type": "text/plain"})
    registration = created.json()
    one = "/registrations/{registration_id}"
    mine = f"/registrations/{registration['registration_id']}"
    for headers in (OPERATOR, farel, nobody):
        call("GET", mine, template=one, headers=headers)
    call("GET", "/registrations/bestaat-niet", template=one)
    call("DELETE", mine, template=one, params={"reason": "ziek"})
    call("DELETE", mine, template=one, headers=nobody)
    call("DELETE", "/registrations/bestaat-niet", template=one)
    listed = call("GET", "/activities")
    call("GET", "/activities", headers=nobody)
    new = call("POST", "/activities", json=career_event(id="nieuw"))
    call("POST", "/activities", json=career_event(id="nieuw", title="Anders"))  # 428
    etag = {"If-Match": new.headers["ETag"]}
    call(
        "POST",
        "/activities",
        json=career_event(id="nieuw", title="Anders"),
        headers={**OPERATOR, **etag},
    )
    call(
        "POST",
        "/activities",
        json=career_event(id="nieuw", title="Weer"),
        headers={**OPERATOR, **etag},
    )  # 412
    activity = "/activities/{activity_id}"
    for headers in (OPERATOR, nobody):
        call("GET", "/activities/nieuw", template=activity, headers=headers)
    call("GET", "/activities/bestaat-niet", template=activity)
    for headers in (farel, nobody, OPERATOR, OPERATOR):  # 403, 401, 200, 200 (again)
        call("DELETE", "/activities/nieuw", template=activity, headers=headers)
    call("DELETE", "/activities/bestaat-niet", template=activity)
    call(
        "POST", "/activities", json=career_event(id="nieuw"), headers={**OPERATOR, "If-Match": "*"}
    )
    for params in ({}, {"format": "csv"}, {"limit": 0}, {"cursor": "???"}):
        call("GET", "/registrations", params=params)
    for headers in (farel, nobody):
        call("GET", "/registrations", headers=headers)
    call("GET", "/registrations", params={"school_id": "het-element"}, headers=farel)
    call(
        "POST",
        "/registrations",
        json=pupil(),
        headers={**OPERATOR, "Idempotency-Key": "k", "X": "1"},
    )
    call(
        "POST",
        "/registrations",
        json=pupil(first_name="Anders"),
        headers={**OPERATOR, "Idempotency-Key": "k"},
    )  # 422: the key was used for another request
    call(
        "POST",
        "/registrations",
        data=b"{" * (2 * 1024 * 1024),
        headers={**OPERATOR, "Content-Type": "application/json"},
    )
    for headers, body in ((farel, career_event()), (nobody, career_event()), (OPERATOR, {})):
        call("POST", "/activities", json=body, headers=headers)
    call("POST", "/activities", data="{", headers={**OPERATOR, "Content-Type": "application/json"})
    call("POST", "/activities", data="x", headers={**OPERATOR, "Content-Type": "text/plain"})
    schools = call("GET", "/schools", headers=farel)
    call("GET", "/schools", headers=nobody)
    exported = "/persons/{person_id}/export"
    for headers in (farel, nobody, OPERATOR):  # 403, 401, 200
        call(
            "GET",
            f"/persons/{registration['person_id']}/export",
            template=exported,
            headers=headers,
        )
    call("GET", "/persons/bestaat-niet/export", template=exported)  # 404
    attendance = "/registrations/{registration_id}/attendance"
    again = call("POST", "/registrations", json=pupil(), headers=OPERATOR).json()
    for headers, body in (
        (farel, {"present": True}),
        (nobody, {"present": True}),
        (OPERATOR, {"present": "ja"}),
        (OPERATOR, {"present": True}),
    ):
        call(
            "POST",
            f"/registrations/{again['registration_id']}/attendance",
            template=attendance,
            headers=headers,
            json=body,
        )  # 403, 401, 422, 200
    call(
        "POST",
        "/registrations/bestaat-niet/attendance",
        template=attendance,
        json={"present": False},
    )  # 404
    sheet = "/activities/{activity_id}/attendance"
    ticked = f"aanmeldingsnummer;aanwezig\n{again['registration_id']};x\n"
    for headers, path in (
        (farel, "loopbaanevenement-test"),
        (nobody, "loopbaanevenement-test"),
        (OPERATOR, "bestaat-niet"),
        (OPERATOR, "loopbaanevenement-test"),
    ):
        call(
            "POST",
            f"/activities/{path}/attendance",
            template=sheet,
            data=ticked.encode(),
            headers={**headers, "Content-Type": "text/csv"},
        )  # 403, 401, 404, 200
    call(
        "POST",
        "/activities/loopbaanevenement-test/attendance",
        template=sheet,
        data=b"aanmeldingsnummer;aanwezig\nonbekend;x\n",
        headers={**OPERATOR, "Content-Type": "text/csv"},
    )  # 422
    for token in ("kort", "x" * 43):  # 400 malformed, 404 unknown
        call("GET", "/my/registration", headers={"X-Personal-Token": token})
    person = "/persons/{person_id}"
    for headers in (farel, nobody, OPERATOR, OPERATOR):  # 403, 401, 204, then 404
        call("DELETE", f"/persons/{registration['person_id']}", template=person, headers=headers)
    # The plan's own answers (200, 404, 503) need scheduling: tests/test_programmes_flow.py.
    for headers in (nobody, OPERATOR):  # 401; 404: no such activity
        call(
            "GET",
            "/activities/vld/programmes",
            template="/activities/{activity_id}/programmes",
            headers=headers,
        )
    for headers in (farel, nobody):
        call(
            "GET",
            "/activities/vld/room-lists",
            template="/activities/{activity_id}/room-lists",
            headers=headers,
        )
    rosters = "/activities/{activity_id}/rosters"
    magister = (EXAMPLES / "magister-3b.csv").read_bytes()
    csv_body = {"Content-Type": "text/csv"}
    for headers, params, body in (
        (farel, {}, magister),  # 200: signed up
        ({**OPERATOR, **csv_body}, {}, magister),  # 422: the operator names no school
        (farel, {}, (EXAMPLES / "met-fouten.csv").read_bytes()),  # 422: lines to fix
        (farel, {}, b"%PDF-1.7"),  # 415: no table
        (nobody, {}, magister),  # 401
    ):
        call(
            "POST",
            "/activities/loopbaanevenement-test/rosters",
            template=rosters,
            headers={**csv_body, **headers},
            params=params,
            data=body,
        )
    call(
        "POST",
        "/activities/loopbaanevenement-test/rosters",
        template=rosters,
        headers=farel,
        files={"file": ("3b.csv", magister, "text/csv")},
    )
    for suffix in ("csv", "xlsx"):
        for headers in (farel, nobody):
            call(
                "GET",
                f"/activities/loopbaanevenement-test/rosters/template.{suffix}",
                template=f"/activities/{{activity_id}}/rosters/template.{suffix}",
                headers=headers,
            )
    # The historical import's operations (tested in their own files): without a key, 401.
    call("PUT", "/schools/farel-college", template="/schools/{school_id}", headers=nobody)
    call(
        "POST",
        "/activities/loopbaanevenement-test/history",
        template="/activities/{activity_id}/history",
        headers=nobody,
    )

    assert check.unchecked() == set()
    assert {status for _, _, status in check.checked} >= {
        200,
        201,
        204,
        400,
        401,
        403,
        404,
        409,
        412,
        413,
        415,
        422,
        428,
    }
    assert RegistrationOut().validate(created.json()) == {}
    assert ProblemOut().validate(refused.json()) == {}
    assert ActivityListOut().validate(listed.json()) == {}
    assert {
        "id": "farel-college",
        "name": "Farel College",
        "kind": "vmbo",
        "municipality": "Amersfoort",
    } in schools.json()["schools"]


def _routes(container):
    """The service's HTTP operations, in the document's notation, without the ops endpoints."""
    ops = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/<string:asset>"}
    return {
        (entrypoint.method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", entrypoint.url))
        for entrypoint in container.entrypoints
        if isinstance(entrypoint, HttpRequestHandler)
        and entrypoint.url not in ops
        and not isinstance(entrypoint, PageHandler)  # HTML pages from mails: test_consent.py
    }


def test_an_activity_missing_what_its_kind_needs_or_with_an_id_twice_is_refused(api):
    bus = career_event(id="bustour-x", kind="bus_tour")
    twice = career_event(
        id="od-x",
        kind="orientation_day",
        workshops=[
            {"workshop_id": "garage", "title": "Autotechniek", "capacity": 16},
            {"workshop_id": "garage", "title": "Autotechniek", "capacity": 16},
        ],
    )

    no_bus = requests.post(f"{api.url}/activities", json=bus, headers=OPERATOR)
    same_id = requests.post(f"{api.url}/activities", json=twice, headers=OPERATOR)

    assert no_bus.status_code == 422
    assert [e["field"] for e in no_bus.json()["errors"]] == ["buses"]
    assert "bus" in no_bus.json()["errors"][0]["message"]
    assert same_id.status_code == 422
    assert same_id.json()["errors"] == [
        {"field": "workshops", "message": "Dubbele workshop_id: garage."}
    ]
    published = {e["payload"]["activity_id"] for e in api.outbox("activity_published")}
    assert not {"bustour-x", "od-x"} & published
