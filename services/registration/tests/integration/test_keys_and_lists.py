"""Keys with roles and the lists schools and hosts read, through the HTTP API: who may do what
(the authorisation matrix over every endpoint), what a school sees of another school (nothing),
paging, the decaan's spreadsheet, and updates with ETags."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from nameko.testing.services import replace_dependencies

from lob_common.contracts import CONTRACTS
from lob_common.db import DatabaseHandle, make_engine
from lob_testing import OPERATOR_KEY, base_url, service_test_config
from registration.adapters.tables import Base, Person
from registration.auth import create_key, revoke_key
from registration.demo import seed
from registration.domain.caller import CallerRole
from registration.service import RegistrationService

pytestmark = pytest.mark.integration
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
HOST = "mbo-amersfoort"


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


class Region:
    """The registration service with demo schools, an activity hosted by MBO Amersfoort, and a
    key for every role."""

    def __init__(self, url, db, scheduling):
        self.url, self.db, self.scheduling = url, db, scheduling
        self.n = 0
        keys = {
            "school_a": (CallerRole.SCHOOL, "farel-college"),
            "school_b": (CallerRole.SCHOOL, "het-element"),
            "website": (CallerRole.WEBSITE, None),
            "host_own": (CallerRole.HOST, HOST),
            "host_other": (CallerRole.HOST, "roc-midden-nederland"),
            "revoked": (CallerRole.SCHOOL, "farel-college"),
        }
        self.headers = {"operator": OPERATOR, "none": {}}
        for name, (role, school) in keys.items():
            self.headers[name] = bearer(create_key(db, name, role, school))
        revoke_key(db, "revoked")

    def call(self, method, path, as_="operator", **kwargs):
        headers = {**self.headers[as_], **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def fresh(self, prefix="p"):
        self.n += 1
        return f"{prefix}{self.n}"

    def sign_up(self, as_="operator", activity_id="hosted", **changes):
        ident = self.fresh()
        body = {
            "activity_id": activity_id,
            "first_name": "Sanne",
            "last_name": f"de Vries {ident}",
            "email": f"{ident}@example.nl",
            "date_of_birth": "2009-03-14",
            "school_id": "farel-college",
            "school_year": 3,
            **changes,
        }
        return self.call("POST", "/registrations", as_, json=body)

    def publish(self, activity_id=None, as_="operator", **changes):
        activity_id = activity_id or self.fresh("a")
        return self.call("POST", "/activities", as_, json=activity(activity_id, **changes))


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


@pytest.fixture
def region(broker, database_url, container_factory):
    config = service_test_config("registration", broker, database_url)
    container = container_factory(RegistrationService, config)
    scheduling = replace_dependencies(container, "scheduling")  # another service: its answers
    container.start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    seed(db, date.today())
    found = Region(base_url(config), db, scheduling)
    assert found.publish("hosted", host_school_id=HOST).status_code == 201
    yield found
    db.engine.dispose()


ROLES = (
    "none",
    "revoked",
    "operator",
    "school_a",
    "school_b",
    "website",
    "host_own",
    "host_other",
)
EVERYONE = frozenset(ROLES) - {"none", "revoked"}
# Who succeeds at each endpoint. The subject is always a pupil of school A (farel-college) on
# an activity hosted by MBO Amersfoort (host_own); reads succeed only if they show that pupil.
MATRIX = {
    "GET /activities": EVERYONE,
    "GET /activities/{id}": EVERYONE,
    "POST /activities": {"operator"},
    "DELETE /activities/{id}": {"operator"},
    "GET /schools": EVERYONE,
    "PUT /schools/{id}": {"operator"},
    "POST /activities/{id}/history": {"operator"},
    "POST /registrations": {"operator", "school_a", "website"},
    "GET /registrations": {"operator", "school_a", "host_own"},
    "GET /registrations?format=csv": {"operator", "school_a", "host_own"},
    "GET /registrations/{id}": {"operator", "school_a", "host_own"},
    "DELETE /registrations/{id}": {"operator", "school_a"},
    "DELETE /persons/{id}": {"operator"},
    "GET /activities/{id}/programmes": {"operator", "school_a"},
    "GET /activities/{id}/room-lists": {"operator", "host_own"},
    "POST /registrations/{id}/attendance": {"operator", "host_own"},
    "POST /activities/{id}/attendance": {"operator", "host_own"},
    "GET /persons/{id}/export": {"operator"},
    "GET /my/registration": set(),  # a participant's personal token, never an API key
    # A roster for school A (?school_id=farel-college): school A itself and the operator; school
    # B may not sign up A's pupils, the website and hosts upload no rosters.
    "POST /activities/{id}/rosters": {"operator", "school_a"},
    "GET /activities/{id}/rosters/template.csv": {"operator", "school_a", "school_b"},
    "GET /activities/{id}/rosters/template.xlsx": {"operator", "school_a", "school_b"},
    "GET /openapi.json": frozenset(ROLES),
    "GET /docs": frozenset(ROLES),
}


def _plan(region, subject):
    """What scheduling answers: the plan in force, filtered to a school as it does."""
    programme = {
        "registration_id": subject["registration_id"],
        "school_id": "farel-college",
        "status": "assigned",
        "waitlist_position": None,
    }

    def programmes(activity_id, school_id=None):
        mine = [programme] if school_id in (None, "farel-college") else []
        return {
            "activity_id": activity_id,
            "kind": "career_event",
            "plan_version": 1,
            "created_at": SOON.isoformat(),
            "programmes": mine,
        }

    rooms = [
        {
            "session_id": "zaal-1",
            "title": "Zaal 1",
            "provider": HOST,
            "round": 1,
            "capacity": 30,
            "count": 1,
            "pupils": [subject["registration_id"]],
        }
    ]
    region.scheduling.programmes.side_effect = programmes
    region.scheduling.room_lists.side_effect = lambda activity_id: rooms


def _attempt(region, endpoint, role):
    """Try the endpoint as `role` on a fresh subject; whether it succeeded (and showed it)."""
    subject = region.sign_up().json()
    _plan(region, subject)
    rid, pid = subject["registration_id"], subject["person_id"]
    shows = lambda r: r.ok and rid in r.text  # noqa: E731 - a read succeeds if it shows the pupil
    match endpoint:
        case "GET /activities":
            r = region.call("GET", "/activities", role)
            return r.ok and "hosted" in r.text
        case "GET /activities/{id}":
            return region.call("GET", "/activities/hosted", role).ok
        case "POST /activities":
            return region.publish(as_=role).status_code == 201
        case "DELETE /activities/{id}":
            target = region.fresh("a")
            region.publish(target)
            return region.call("DELETE", f"/activities/{target}", role).ok
        case "GET /schools":
            return region.call("GET", "/schools", role).ok
        case "PUT /schools/{id}":
            school = {"name": "Overige instellingen", "kind": "other", "municipality": None}
            return region.call("PUT", f"/schools/{region.fresh('s')}", role, json=school).ok
        case "POST /activities/{id}/history":
            target = region.fresh("h")
            region.publish(target, kind="bus_tour", historical=True, **_past_bus_tour())
            row = {"key": "k1", "role": "professional", "school_id": "farel-college"}
            return region.call(
                "POST", f"/activities/{target}/history", role, json={"participants": [row]}
            ).ok
        case "POST /registrations":
            return region.sign_up(as_=role).status_code == 201
        case "GET /registrations":
            return shows(region.call("GET", "/registrations?activity_id=hosted&limit=1000", role))
        case "GET /registrations?format=csv":
            return shows(region.call("GET", "/registrations?format=csv", role))
        case "GET /registrations/{id}":
            return shows(region.call("GET", f"/registrations/{rid}", role))
        case "DELETE /registrations/{id}":
            return region.call("DELETE", f"/registrations/{rid}", role).ok
        case "DELETE /persons/{id}":
            return region.call("DELETE", f"/persons/{pid}", role).status_code == 204
        case "GET /activities/{id}/programmes":
            return shows(region.call("GET", "/activities/hosted/programmes", role))
        case "GET /activities/{id}/room-lists":
            return shows(region.call("GET", "/activities/hosted/room-lists", role))
        case "POST /registrations/{id}/attendance":
            return region.call(
                "POST", f"/registrations/{rid}/attendance", role, json={"present": True}
            ).ok
        case "POST /activities/{id}/attendance":
            ticked = f"aanmeldingsnummer;aanwezig\n{rid};x\n".encode()
            headers = {"Content-Type": "text/csv"}
            r = region.call(
                "POST", "/activities/hosted/attendance", role, data=ticked, headers=headers
            )
            return r.ok
        case "GET /persons/{id}/export":
            return shows(region.call("GET", f"/persons/{pid}/export", role))
        case "GET /my/registration":
            return region.call("GET", "/my/registration", role).ok
        case "POST /activities/{id}/rosters":
            n = region.fresh("")
            roster = "Stamnummer;Roepnaam;Achternaam;Klas;Geboortedatum\n"
            roster += f"{n};Sem;Smit {n};3B;14-03-2011\n"
            r = region.call(
                "POST",
                "/activities/hosted/rosters?school_id=farel-college",
                role,
                data=roster.encode(),
                headers={"Content-Type": "text/csv"},
            )
            return r.status_code == 200 and r.json()["created"] == 1
        case "GET /activities/{id}/rosters/template.csv":
            return region.call("GET", "/activities/hosted/rosters/template.csv", role).ok
        case "GET /activities/{id}/rosters/template.xlsx":
            return region.call("GET", "/activities/hosted/rosters/template.xlsx", role).ok
        case "GET /openapi.json" | "GET /docs":
            return region.call("GET", endpoint.split()[1], role).ok
    raise AssertionError(f"no attempt for {endpoint}")


def _past_bus_tour():
    return {
        "starts_at": "2024-10-17T08:30:00+02:00",
        "ends_at": "2024-10-17T16:00:00+02:00",
        "buses": [{"bus_id": "bus-1", "seats": 50}],
    }


def test_only_the_allowed_cells_of_the_authorisation_matrix_succeed(region):
    outcome = {
        endpoint: {role for role in ROLES if _attempt(region, endpoint, role)}
        for endpoint in MATRIX
    }

    wrong = {
        endpoint: {
            "unexpected": sorted(got - MATRIX[endpoint]),
            "missing": sorted(MATRIX[endpoint] - got),
        }
        for endpoint, got in outcome.items()
        if got != MATRIX[endpoint]
    }
    assert wrong == {}


def test_the_matrix_covers_every_operation_of_the_document(region):
    document = region.call("GET", "/openapi.json").json()
    operations = {
        f"{method.upper()} {path}".replace("{activity_id}", "{id}")
        .replace("{registration_id}", "{id}")
        .replace("{person_id}", "{id}")
        .replace("{school_id}", "{id}")
        for path, item in document["paths"].items()
        for method in item
    }
    assert operations <= set(MATRIX)


def test_a_school_learns_nothing_of_another_schools_pupil(region):
    """The same details signed up by school B: B's own record, A's untouched and unseen."""
    details = {"first_name": "Noor", "last_name": "Bakker", "email": "noor@example.nl"}
    mine = region.sign_up(as_="school_a", school_id=None, **details)
    theirs = region.sign_up(as_="school_b", school_id=None, **details)
    again = region.sign_up(as_="school_b", school_id=None, **details)
    peek = region.call("GET", f"/registrations/{mine.json()['registration_id']}", "school_b")
    nothing = region.call("GET", "/registrations/bestaat-niet", "school_b")
    cancel = region.call("DELETE", f"/registrations/{mine.json()['registration_id']}", "school_b")

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["person_id"] != theirs.json()["person_id"]
    assert theirs.json()["school_id"] == "het-element"
    assert again.status_code == 409  # B's own pupil, signed up twice by B
    assert peek.status_code == cancel.status_code == nothing.status_code == 404
    assert peek.json()["detail"].replace(mine.json()["registration_id"], "X") == nothing.json()[
        "detail"
    ].replace("bestaat-niet", "X")
    with region.db() as uow:
        person = uow.session.get(Person, mine.json()["person_id"])
        assert person.school_id == "farel-college"
    listed = region.call("GET", "/registrations", "school_b").json()["registrations"]
    assert [r["registration_id"] for r in listed] == [theirs.json()["registration_id"]]


def test_a_mentor_signed_up_by_the_school_is_the_schools_and_on_its_list(region):
    region.publish("netwerk", kind="network_meeting")
    mentor = region.sign_up(
        as_="school_a", activity_id="netwerk", role="professional", school_id=None
    )

    assert mentor.status_code == 201, mentor.text
    assert mentor.json()["school_id"] == "farel-college"
    listed = region.call("GET", "/registrations?role=professional", "school_a").json()
    assert [r["registration_id"] for r in listed["registrations"]] == [
        mentor.json()["registration_id"]
    ]


def test_pages_follow_one_stable_order_and_filters_narrow_them(region):
    made = [region.sign_up().json()["registration_id"] for _ in range(7)]
    region.call("DELETE", f"/registrations/{made[2]}")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"activity_id": "hosted", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = region.call("GET", "/registrations", params=params).json()
        seen += [r["registration_id"] for r in page["registrations"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    cancelled = region.call("GET", "/registrations?status=cancelled").json()["registrations"]
    bad = region.call("GET", "/registrations", params={"cursor": "bm9n", "limit": 5000})

    assert seen == made and pages == 3
    assert [r["registration_id"] for r in cancelled] == [made[2]]
    assert cancelled[0]["last_name"].startswith("de Vries")
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"limit"}


def test_a_host_reads_the_list_of_the_activity_it_hosts_and_of_no_other(region):
    region.publish("elders", host_school_id="roc-midden-nederland")
    here = region.sign_up().json()["registration_id"]
    elsewhere = region.sign_up(activity_id="elders").json()["registration_id"]

    own = region.call("GET", "/registrations", "host_own").json()["registrations"]
    other = region.call("GET", f"/registrations/{elsewhere}", "host_own")

    assert [r["registration_id"] for r in own] == [here]
    assert other.status_code == 404


def test_a_decaan_opens_the_list_in_a_dutch_spreadsheet(region):
    region.sign_up(as_="school_a", school_id=None, first_name="Ömer", last_name="=1+1")
    region.sign_up(as_="school_b", school_id=None, first_name="Els", last_name="Jansen")

    response = region.call("GET", "/registrations?format=csv", "school_a")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Achternaam", "Voornaam", "School", "Leerjaar"]
    assert rows[1][:3] == ["'=1+1", "Ömer", "Farel College"]  # a formula stays text
    assert rows[1][4:8] == ["leerling", "Loopbaanevenement hosted", "aangemeld", "niet nodig"]
    assert len(rows) == 2  # school B's pupil is not in school A's file


def test_an_update_needs_the_current_etag(region):
    first = region.call("GET", "/activities/hosted")
    etag = first.headers["ETag"]
    changed = activity("hosted", title="Loopbaanavond", host_school_id=HOST)

    without = region.call("POST", "/activities", json=changed)
    with_it = region.call("POST", "/activities", json=changed, headers={"If-Match": etag})
    stale = region.call("POST", "/activities", json=changed, headers={"If-Match": etag})
    shown = region.call("GET", "/activities/hosted")

    assert without.status_code == 428 and without.json()["code"] == "if-match-required"
    assert with_it.status_code == 200 and with_it.headers["ETag"] != etag
    assert stale.status_code == 412
    assert stale.headers["ETag"] == with_it.headers["ETag"]
    assert shown.json()["title"] == "Loopbaanavond"
    assert shown.headers["ETag"] == with_it.headers["ETag"]


def test_an_if_match_longer_than_any_etag_is_refused_and_changes_nothing(region):
    too_long = {"If-Match": '"' + "a" * 300 + '"'}
    new = region.call("POST", "/activities", json=activity("nieuw-lang"), headers=too_long)
    update = region.call(
        "POST", "/activities", json=activity("hosted", title="Anders"), headers=too_long
    )

    for answer in (new, update):
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "invalid-header"
        assert "If-Match" in answer.json()["detail"]
    assert region.call("GET", "/activities/nieuw-lang").status_code == 404
    assert region.call("GET", "/activities/hosted").json()["title"] != "Anders"


def _infoday(**changes):
    sessions = [
        {"session_id": f"S{i}", "title": f"Sessie {i}", "capacity": 30, "rounds": [1, 2, 3]}
        for i in range(1, 6)
    ]
    return activity("vld", kind="infoday", sessions=sessions, **changes)


def test_what_people_signed_up_for_cannot_be_taken_away(region):
    region.call("POST", "/activities", json=_infoday())
    chose = {"choices": ["S1", "S2", "S3"], "backup": "S4"}
    assert region.sign_up(activity_id="vld", **chose).status_code == 201
    any_version = {"If-Match": "*"}

    other_kind = region.call(
        "POST", "/activities", json=activity("vld", kind="other"), headers=any_version
    )
    fewer = _infoday()
    fewer["sessions"] = [s for s in fewer["sessions"] if s["session_id"] != "S4"]
    without_s4 = region.call("POST", "/activities", json=fewer, headers=any_version)
    fewer["sessions"] = [s for s in _infoday()["sessions"] if s["session_id"] != "S5"]
    without_s5 = region.call("POST", "/activities", json=fewer, headers=any_version)

    assert other_kind.status_code == 409 and "infoday" in other_kind.json()["detail"]
    assert without_s4.status_code == 409
    assert "Voorlichting S4 kan niet weg: 1 aanmelding" in without_s4.json()["detail"]
    assert without_s5.status_code == 200  # nobody chose S5
    assert region.call("GET", "/activities/vld").json()["kind"] == "infoday"


def test_a_cancelled_activity_is_announced_once_and_takes_no_more_sign_ups(region):
    assert region.sign_up().status_code == 201
    first = region.call("DELETE", "/activities/hosted", params={"reason": "te weinig animo"})
    again = region.call("DELETE", "/activities/hosted")
    late = region.sign_up()
    update = region.call("POST", "/activities", json=activity("hosted"), headers={"If-Match": "*"})

    assert first.status_code == again.status_code == 200
    assert first.json()["cancelled_at"] is not None
    events = _outbox(region, "activity_cancelled")
    assert [e["payload"]["reason"] for e in events] == ["te weinig animo"]
    assert late.status_code == 409 and late.json()["code"] == "activity-cancelled"
    assert update.status_code == 409


def test_sign_up_opens_at_its_moment_and_the_event_says_so(region):
    opens = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    region.publish("later", sign_up_opens_at=opens.isoformat(), audience=["pupils"])

    early = region.sign_up(activity_id="later")
    shown = region.call("GET", "/activities/later").json()

    assert early.status_code == 409 and early.json()["code"] == "sign-up-not-open"
    assert datetime.fromisoformat(shown["sign_up_opens_at"]) == opens
    [event] = [
        e for e in _outbox(region, "activity_published") if e["payload"]["activity_id"] == "later"
    ]
    # sign_up_opens_at came with 1.2; later minor versions keep it.
    assert event["schema_version"] == CONTRACTS["activity_published"].version >= "1.2"
    assert event["payload"]["audience"] == ["pupils"]
    assert datetime.fromisoformat(event["payload"]["sign_up_opens_at"]) == opens
    hosted = [
        e for e in _outbox(region, "activity_published") if e["payload"]["activity_id"] == "hosted"
    ]
    assert hosted[-1]["payload"]["host_school_id"] == HOST


def _outbox(region, event_type):
    from sqlalchemy import select

    outbox = region.db.metadata.tables["outbox"]
    with region.db.engine.connect() as connection:
        return [
            json.loads(json.dumps(row.body))
            for row in connection.execute(
                select(outbox.c.body).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
            )
        ]
