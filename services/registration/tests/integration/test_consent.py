"""Parental consent, personal links and attendance through registration's HTTP API and pages:
what a parent, a participant and a host college see and what registration emits."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from nameko.testing.services import entrypoint_hook, replace_dependencies
from sqlalchemy import func, select, text, update

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import OPERATOR_KEY, base_url, service_test_config
from registration.adapters.tables import (
    AccessToken,
    AnonymousRegistration,
    Base,
    Person,
    Registration,
)
from registration.auth import create_key
from registration.demo import seed
from registration.domain.caller import CallerRole
from registration.handlers_consent import ConsentSettings, sweep
from registration.service import RegistrationService

pytestmark = pytest.mark.integration
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
HOST = "mbo-amersfoort"


class Region:
    def __init__(self, url, db, container, scheduling):
        self.url, self.db, self.container, self.scheduling = url, db, container, scheduling
        self.scheduling.programmes.side_effect = lambda activity_id, school_id=None: None
        self.n = 0

    def call(self, method, path, headers=OPERATOR, **kwargs):
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def sign_up(self, age=14, activity_id="dag", **changes):
        self.n += 1
        # `age` on the activity's day; day 28 at most, as SOON can be 29 February (from 30
        # January of a leap year) and replace(year=...) then fails in a common year.
        born = SOON.date().replace(year=SOON.year - age, day=min(SOON.day, 28))
        born -= timedelta(days=40)
        body = {
            "activity_id": activity_id,
            "first_name": "Noor",
            "last_name": f"Jansen{self.n}",
            "email": f"noor{self.n}@example.nl",
            "parent_email": f"ouder{self.n}@example.nl",
            "date_of_birth": born.isoformat(),
            "school_id": "farel-college",
            "school_year": 2,
            **changes,
        }
        response = self.call("POST", "/registrations", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def contact(self, registration_id):
        with entrypoint_hook(self.container, "contact") as contact:
            return contact(registration_id)

    def links(self, registration_id):
        return self.contact(registration_id)["links"]

    def outbox(self, event_type):
        outbox = self.db.metadata.tables["outbox"]
        with self.db.engine.connect() as connection:
            return [
                row.body["payload"]
                for row in connection.execute(
                    select(outbox.c.body)
                    .where(outbox.c.event_type == event_type)
                    .order_by(outbox.c.id)
                )
            ]

    def registration(self, registration_id):
        with self.db() as uow:
            return uow.session.get(Registration, registration_id)

    def count(self, model):
        with self.db() as uow:
            return uow.session.scalar(select(func.count()).select_from(model))

    def dump(self):
        """Every text value in registration's tables (the database as a backup would hold it)."""
        values = []
        with self.db.engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                for row in connection.execute(table.select()):
                    values += [str(v) for v in row]
        return "\n".join(values)


def activity(activity_id, **changes):
    return {
        "id": activity_id,
        "kind": "career_event",
        "title": f"Loopbaanevenement {activity_id}",
        "starts_at": SOON.isoformat(),
        "ends_at": (SOON + timedelta(hours=2)).isoformat(),
        "location": "Amersfoort",
        **changes,
    }


def make_region(broker, database_url, container_factory, **config):
    config = service_test_config("registration", broker, database_url, **config)
    container = container_factory(RegistrationService, config)
    scheduling = replace_dependencies(container, "scheduling")
    container.start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    seed(db, date.today())
    region = Region(base_url(config), db, container, scheduling)
    for activity_id in ("dag", "andere"):
        published = region.call(
            "POST", "/activities", json=activity(activity_id, host_school_id=HOST)
        )
        assert published.status_code == 201, published.text
    return region


@pytest.fixture
def region(broker, tmp_path, container_factory):
    # The sweep is driven by the tests (sweep(..., now=...)); its timer stays out of the way.
    found = make_region(
        broker,
        f"sqlite:///{tmp_path}/r.db",
        container_factory,
        CONSENT_SWEEP_SECONDS=3600,
        CONSENT_ERASE_GRACE_SECONDS=600,
    )
    yield found
    found.db.engine.dispose()


def path_of(url):
    return re.sub(r"^https?://[^/]+", "", url)


def test_a_parent_consents_and_only_then_the_pupil_is_signed_up(
    broker, database_url, container_factory
):
    region = make_region(broker, database_url, container_factory)
    pupil = region.sign_up()
    rid = pupil["registration_id"]

    asked = region.outbox("consent_requested")
    before_consent = region.outbox("signed_up")
    links = region.links(rid)
    page = region.call("GET", path_of(links["consent"]), headers={})
    given = region.call("POST", path_of(links["consent"]) + "/ja", headers={})
    again = region.call("POST", path_of(links["consent"]) + "/nee", headers={})

    assert pupil["status"] == "pending_consent"
    assert [a["registration_id"] for a in asked] == [rid]
    assert before_consent == []  # nobody planned, counted or confirmed it before
    assert links["consent"].startswith("http://127.0.0.1:8000/toestemming/")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "Noor" in page.text and "Ik geef toestemming" in page.text
    assert "Ik geef geen toestemming" in page.text
    assert given.status_code == 200 and "Toestemming intrekken" in given.text
    assert region.registration(rid).status == "signed_up"
    assert region.registration(rid).consent == "given"
    [consented] = region.outbox("consent_given")
    [signed_up] = region.outbox("signed_up")
    assert consented == {**consented, "registration_id": rid, "activity_id": "dag"}
    assert signed_up["registration_id"] == rid and signed_up["age_band"] == "12-15"
    assert "Noor" not in str(signed_up) and "date_of_birth" not in signed_up
    assert again.status_code == 409 and "al gebruikt" in again.text  # a used link: nothing
    assert region.registration(rid).status == "signed_up"
    assert region.outbox("consent_refused") == []
    with region.db() as uow:  # only hashes are stored
        stored = uow.session.scalars(select(AccessToken.token_hash)).all()
    assert links["consent"].rsplit("/", 1)[1] not in stored
    region.db.engine.dispose()


def test_a_refusal_voids_the_sign_up_and_erases_the_pupil_after_the_grace(region):
    pupil = region.sign_up(first_name="Fenna", email="fenna.unique@example.nl")
    rid, pid = pupil["registration_id"], pupil["person_id"]
    consent = path_of(region.links(rid)["consent"])

    refused = region.call("POST", consent + "/nee", headers={})
    during_grace = region.contact(rid)
    early = sweep(region.db, ConsentSettings(erase_grace=timedelta(seconds=600)))
    late = sweep(
        region.db,
        ConsentSettings(erase_grace=timedelta(seconds=600)),
        now=datetime.now(UTC) + timedelta(seconds=601),
    )
    after = region.call("GET", consent, headers={})

    assert refused.status_code == 200 and "geen toestemming" in refused.text
    [outcome] = region.outbox("consent_refused")
    assert outcome == {**outcome, "registration_id": rid, "person_id": pid, "reason": "refused"}
    assert region.outbox("signed_up") == []
    assert during_grace["email"] == "fenna.unique@example.nl"  # the outcome mail can still go
    assert during_grace["parent_email"] and during_grace["links"]["consent"] is None
    assert (early["erased"], late["erased"]) == (0, 1)
    assert [e["person_id"] for e in region.outbox("person_erased")] == [pid]
    assert region.contact(rid) is None
    dump = region.dump()
    assert "Fenna" not in dump and "fenna.unique@example.nl" not in dump
    with region.db() as uow:
        kept = uow.session.get(AnonymousRegistration, rid)
        assert (kept.activity_id, kept.school_id, kept.role) == ("dag", "farel-college", "pupil")
        assert (kept.age_band, kept.consent, kept.status) == ("12-15", "refused", "withdrawn")
    assert after.status_code == 404 and "kennen we niet" in after.text


def test_no_answer_in_time_expires_the_consent_and_a_withdrawal_cancels_and_erases(region):
    silent = region.sign_up()
    consenting = region.sign_up()
    consent = path_of(region.links(consenting["registration_id"])["consent"])
    region.call("POST", consent + "/ja", headers={})
    region.scheduling  # noqa: B018 - the plan is not asked for: no scheduling needed here

    expired = sweep(region.db, ConsentSettings(), now=SOON - timedelta(days=1))
    withdrawn = region.call("POST", consent + "/intrekken", headers={})

    assert expired["expired"] == 1
    reasons = {r["registration_id"]: r["reason"] for r in region.outbox("consent_refused")}
    assert reasons == {
        silent["registration_id"]: "expired",
        consenting["registration_id"]: "withdrawn",
    }
    assert withdrawn.status_code == 200 and "ingetrokken" in withdrawn.text
    [cancelled] = region.outbox("sign_up_cancelled")
    assert cancelled["registration_id"] == consenting["registration_id"]
    assert region.registration(consenting["registration_id"]).erase_after is not None


def test_bad_links_say_so_in_plain_dutch_and_change_nothing(region):
    pupil = region.sign_up()
    rid = pupil["registration_id"]
    consent = path_of(region.links(rid)["consent"])
    before = region.count(Registration), len(region.outbox("consent_given"))

    malformed = region.call("GET", "/toestemming/abc%20def", headers={})
    forged = region.call("POST", "/toestemming/" + "A" * 43 + "/ja", headers={})
    personal_as_consent = region.call(
        "GET", "/toestemming/" + region.links(rid)["personal"].rsplit("/", 1)[1], headers={}
    )
    with region.db() as uow:  # the link's term passed while the parent is still awaited
        uow.session.execute(update(AccessToken).values(expires_at=datetime.now(UTC)))
        uow.commit()
    expired = region.call("POST", consent + "/ja", headers={})
    fresh = region.call("POST", consent + "/nieuwe-link", headers={})

    for response, status, words in (
        (malformed, 400, "niet compleet"),
        (forged, 404, "kennen we niet"),
        (personal_as_consent, 404, "kennen we niet"),
        (expired, 410, "verlopen"),
    ):
        assert response.status_code == status, response.text
        assert "text/html" in response.headers["Content-Type"]
        assert words in response.text and "Traceback" not in response.text
    assert "nieuwe link" in expired.text
    assert (region.count(Registration), len(region.outbox("consent_given"))) == before
    assert region.registration(rid).status == "pending_consent"
    assert fresh.status_code == 200 and "nieuwe link" in fresh.text
    assert len(region.outbox("consent_requested")) == 2  # notifications mails a fresh link
    assert region.links(rid)["consent"] is not None


def test_a_page_whose_registration_is_gone_or_broken_shows_no_stack_trace(region):
    pupil = region.sign_up()
    consent = path_of(region.links(pupil["registration_id"])["consent"])
    with region.db() as uow:  # a broken row: a status no code knows
        uow.session.execute(text("UPDATE registrations SET status = 'kapot'"))
        uow.commit()

    broken = region.call("GET", consent, headers={})

    assert broken.status_code == 500 and "Traceback" not in broken.text
    assert "Er ging iets mis" in broken.text


def test_a_batch_of_contacts_is_what_one_contact_says_with_links_that_open(region):
    waiting = region.sign_up(first_name="Fenna", email="fenna@example.nl")  # consent asked
    older = region.sign_up(age=17, first_name="Daan", email="daan@example.nl")
    ids = [waiting["registration_id"], older["registration_id"], "no-such-registration"]

    with entrypoint_hook(region.container, "contacts") as contacts:
        batch = contacts(ids)
    one = {rid: region.contact(rid) for rid in ids[:2]}

    assert set(batch) == set(ids) and batch["no-such-registration"] is None
    for rid in ids[:2]:
        assert {k: v for k, v in batch[rid].items() if k != "links"} == {
            k: v for k, v in one[rid].items() if k != "links"
        }
        assert batch[rid]["links"]["personal"] != one[rid]["links"]["personal"]  # fresh ones
    assert batch[ids[0]]["email"] == "fenna@example.nl" and batch[ids[0]]["links"]["consent"]
    assert batch[ids[1]]["first_name"] == "Daan" and batch[ids[1]]["links"]["consent"] is None
    page = region.call("GET", path_of(batch[ids[0]]["links"]["consent"]), headers={})
    mine = region.call("GET", path_of(batch[ids[1]]["links"]["personal"]), headers={})
    assert page.status_code == 200 and "Fenna" in page.text
    assert mine.status_code == 200 and "Daan" in mine.text


def test_the_personal_link_shows_the_sign_up_and_cancels_as_an_operator_would(region):
    pupil = region.sign_up(age=17)  # no consent needed
    rid = pupil["registration_id"]
    links = region.links(rid)
    mine = path_of(links["personal"])
    token = links["personal"].rsplit("/", 1)[1]
    region.scheduling.programmes.side_effect = lambda activity_id, school_id=None: {
        "activity_id": activity_id,
        "kind": "career_event",
        "plan_version": 1,
        "created_at": SOON.isoformat(),
        "programmes": [
            {
                "registration_id": rid,
                "school_id": school_id,
                "status": "assigned",
                "waitlist_position": None,
                "workshop": {"workshop_id": "w1", "title": "Techniek", "location": "Garage"},
            }
        ],
    }

    page = region.call("GET", mine, headers={})
    as_json = region.call("GET", "/my/registration", headers={"X-Personal-Token": token})
    confirm = region.call("GET", mine + "/afmelden", headers={})
    cancelled = region.call("POST", mine + "/afmelden", headers={})
    twice = region.call("POST", mine + "/afmelden", headers={})

    assert links["consent"] is None
    assert page.status_code == 200 and "Noor" in page.text and "Techniek" in page.text
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["programme"]["workshop"]["title"] == "Techniek"
    assert as_json.json()["status"] == "signed_up" and as_json.json()["cancellable"] is True
    assert confirm.status_code == 200 and "Weet je het zeker" in confirm.text
    assert region.registration(rid).status == "cancelled" and "afgemeld" in cancelled.text
    assert twice.status_code == 200
    [event] = region.outbox("sign_up_cancelled")  # once, as an operator's cancel
    assert set(event) == {"registration_id", "activity_id", "person_id", "cancelled_at", "reason"}


def test_after_the_cut_off_the_link_no_longer_cancels(region):
    starts = datetime.now(UTC) + timedelta(hours=3)
    region.call(
        "POST",
        "/activities",
        json=activity(
            "vandaag",
            starts_at=starts.isoformat(),
            ends_at=(starts + timedelta(hours=2)).isoformat(),
        ),
    )
    pupil = region.sign_up(age=17, activity_id="vandaag")
    mine = path_of(region.links(pupil["registration_id"])["personal"])

    late = region.call("POST", mine + "/afmelden", headers={})

    assert late.status_code == 409 and "kan niet meer" in late.text
    assert region.registration(pupil["registration_id"]).status == "signed_up"
    assert region.outbox("sign_up_cancelled") == []


def test_attendance_per_person_emits_once_per_change_and_only_for_its_host(region):
    pupil = region.sign_up(age=17)
    rid = pupil["registration_id"]
    own = {"Authorization": f"Bearer {create_key(region.db, 'host', CallerRole.HOST, HOST)}"}
    other = {
        "Authorization": "Bearer "
        + create_key(region.db, "other", CallerRole.HOST, "roc-midden-nederland")
    }
    path = f"/registrations/{rid}/attendance"

    first = region.call("POST", path, headers=own, json={"present": True})
    same = region.call("POST", path, headers=own, json={"present": True})
    foreign = region.call("POST", path, headers=other, json={"present": False})
    correction = region.call("POST", path, json={"present": False})

    assert (first.json()["changed"], same.json()["changed"]) == (True, False)
    assert foreign.status_code == 404
    assert correction.json() == {**correction.json(), "present": False, "changed": True}
    assert [e["attended"] for e in region.outbox("attendance_recorded")] == [True, False]


def _rooms(region, ids):
    rooms = [
        {
            "session_id": "zaal-1",
            "title": "Zaal 1",
            "provider": HOST,
            "round": 1,
            "capacity": 30,
            "count": len(ids),
            "pupils": ids,
        }
    ]
    region.scheduling.room_lists.side_effect = lambda activity_id: rooms


def test_the_ticked_room_list_records_everyone_and_bad_files_change_nothing(region):
    ids = [region.sign_up(age=17)["registration_id"] for _ in range(3)]
    elsewhere = region.sign_up(age=17, activity_id="andere")["registration_id"]
    _rooms(region, ids)
    listed = region.call("GET", "/activities/dag/room-lists?format=csv").text
    lines = listed.strip().splitlines()
    header = lines[0].split(";")
    ticks = {ids[0]: "ja", ids[1]: "x", ids[2]: ""}
    ticked = "\n".join(
        [
            lines[0],
            *(
                line + ticks[line.split(";")[header.index("aanmeldingsnummer")]]
                for line in lines[1:]
            ),
        ]
    )

    def upload(body, activity_id="dag"):
        return region.call(
            "POST",
            f"/activities/{activity_id}/attendance",
            data=body.encode(),
            headers={**OPERATOR, "Content-Type": "text/csv"},
        )

    bad = {
        "another activity": upload(ticked + f"\n1;x;;;;;;{elsewhere};ja"),
        "unknown": upload(ticked.replace(ids[2], "onbekend-nummer")),
        "duplicate": upload(ticked + "\n" + ticked.splitlines()[1]),
        "not a table": upload("%PDF-1.4 zomaar iets"),
        "empty column": upload(listed),
    }
    recorded = upload(ticked)
    again = upload(ticked)

    assert header[-2:] == ["aanmeldingsnummer", "aanwezig"]
    assert all(line.endswith(";") for line in lines[1:])  # aanwezig: empty, to tick
    for name, response in bad.items():
        assert response.status_code == 422, (name, response.text)
        assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "andere activiteit" in bad["another activity"].text
    assert "Onbekend aanmeldingsnummer" in bad["unknown"].text
    assert {e["field"] for e in bad["duplicate"].json()["errors"]} == {"row"}
    assert bad["duplicate"].json()["errors"][0]["row"] == 5
    assert recorded.status_code == 200, recorded.text
    assert recorded.json() == {**recorded.json(), "present": 2, "absent": 1, "changed": 3}
    assert again.json()["changed"] == 0
    events = region.outbox("attendance_recorded")
    assert sorted((e["registration_id"], e["attended"]) for e in events) == sorted(
        [(ids[0], True), (ids[1], True), (ids[2], False)]
    )


def test_the_export_holds_everything_about_a_person_and_only_for_the_operator(region):
    pupil = region.sign_up()
    school = {
        "Authorization": "Bearer " + create_key(region.db, "s", CallerRole.SCHOOL, "farel-college")
    }

    export = region.call("GET", f"/persons/{pupil['person_id']}/export")
    refused = region.call("GET", f"/persons/{pupil['person_id']}/export", headers=school)

    assert export.status_code == 200
    body = export.json()
    assert body["person"]["first_name"] == "Noor" and body["person"]["parent_email"]
    [registration] = body["registrations"]
    assert registration["status"] == "pending_consent" and registration["consent_expires_at"]
    assert refused.status_code == 403
    with region.db() as uow:
        assert uow.session.get(Person, pupil["person_id"]) is not None


def test_an_erased_participant_still_counts_anonymously_in_the_rebuild_facts(region):
    from registration.handlers import export_participation

    came = region.sign_up(age=17)
    waiting = region.sign_up(age=14)
    region.call(
        "POST", f"/registrations/{came['registration_id']}/attendance", json={"present": True}
    )

    erased = region.call("DELETE", f"/persons/{came['person_id']}")
    facts = list(export_participation(region.db)["facts"])
    ids = {f["registration_id"] for f in facts}

    assert erased.status_code == 204
    assert came["registration_id"] not in ids  # the record is no longer linked to anyone
    [kept] = [f for f in facts if f["registration_id"] is None and f["activity_id"] == "dag"]
    assert (kept["status"], kept["attended"], kept["age_band"]) == ("signed_up", True, "16-17")
    assert (kept["school_id"], kept["activity_id"], kept["role"]) == (
        "farel-college",
        "dag",
        "pupil",
    )
    assert not {"first_name", "email", "date_of_birth"} & set(kept)
    assert waiting["registration_id"] not in ids  # never reached reporting: no fact


def test_tokens_never_reach_the_logs(region, caplog):
    caplog.set_level("DEBUG")
    pupil = region.sign_up()
    links = region.links(pupil["registration_id"])
    tokens = [links["consent"].rsplit("/", 1)[1], links["personal"].rsplit("/", 1)[1]]

    region.call("GET", path_of(links["consent"]), headers={})
    region.call("POST", path_of(links["consent"]) + "/ja", headers={})
    region.call("GET", path_of(links["personal"]), headers={})
    region.call("GET", "/my/registration", headers={"X-Personal-Token": tokens[1]})

    # what the service logs (the test's own HTTP client, urllib3, logs its URLs at DEBUG)
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("urllib3"))
    assert "/toestemming/<string:token>" in logged  # the access log shows the route
    for token in tokens:
        assert token not in logged
