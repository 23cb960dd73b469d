"""Class rosters through the HTTP API, against the real service, broker and database (SQLite and
PostgreSQL): a school uploads its Magister export and its pupils are signed up and listed, and
uploading it again changes nothing; a file with errors stores nothing and names every line;
valid_rows_only and dry_run; one school never sees or matches another's pupils; the limits,
XLSX and multipart uploads, and the templates."""

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
import requests
from sqlalchemy import select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import OPERATOR_KEY, base_url, service_test_config
from registration.adapters.tables import Base, Person, Registration
from registration.auth import create_key
from registration.demo import seed
from registration.domain.caller import CallerRole
from registration.service import RegistrationService

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[4] / "docs" / "examples"
MAGISTER = (EXAMPLES / "magister-3b.csv").read_bytes()
WITH_ERRORS = (EXAMPLES / "met-fouten.csv").read_bytes()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
MAX_ROWS = 40
MAX_BYTES = 8000


class School:
    def __init__(self, url, db):
        self.url, self.db = url, db
        self.headers = {"operator": {"Authorization": f"Bearer {OPERATOR_KEY}"}}
        for name, role, school in (
            ("school_a", CallerRole.SCHOOL, "farel-college"),
            ("school_b", CallerRole.SCHOOL, "het-element"),
            ("website", CallerRole.WEBSITE, None),
            ("host", CallerRole.HOST, "mbo-amersfoort"),
        ):
            key = create_key(db, name, role, school)
            self.headers[name] = {"Authorization": f"Bearer {key}"}

    def call(self, method, path, as_="school_a", **kwargs):
        headers = {**self.headers[as_], **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def upload(self, data, as_="school_a", media_type="text/csv", activity="klas", **params):
        return self.call(
            "POST",
            f"/activities/{activity}/rosters",
            as_,
            params=params,
            data=data,
            headers={"Content-Type": media_type},
        )

    def listed(self, as_="school_a", activity="klas"):
        answer = self.call("GET", f"/registrations?activity_id={activity}&limit=1000", as_)
        assert answer.status_code == 200, answer.text
        return answer.json()["registrations"]

    def publish(self, activity_id, **changes):
        body = {
            "id": activity_id,
            "kind": "career_event",
            "title": f"Dag {activity_id}",
            "starts_at": SOON.isoformat(),
            "ends_at": (SOON + timedelta(hours=3)).isoformat(),
            "location": "Amersfoort",
            **changes,
        }
        answer = self.call("POST", "/activities", "operator", json=body)
        assert answer.status_code == 201, answer.text


@pytest.fixture
def school(broker, database_url, container_factory):
    config = service_test_config(
        "registration",
        broker,
        database_url,
        ROSTER_MAX_ROWS=MAX_ROWS,
        ROSTER_MAX_BYTES=MAX_BYTES,
    )
    container_factory(RegistrationService, config).start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    seed(db, date.today())
    found = School(base_url(config), db)
    found.publish("klas")
    yield found
    db.engine.dispose()


def signed_up_events(db):
    outbox = Base.metadata.tables["outbox"]
    with db() as uow:
        bodies = uow.session.scalars(
            select(outbox.c.body).where(outbox.c.event_type == "signed_up")
        ).all()
    return [body["payload"] for body in bodies]


def test_a_magister_export_is_signed_up_listed_and_the_same_file_again_changes_nothing(school):
    first = school.upload(MAGISTER)
    again = school.upload(MAGISTER)

    assert first.status_code == 200, first.text
    result = first.json()
    assert (result["created"], result["unchanged"], result["refused"]) == (6, 0, 0)
    assert result["without_email"] == 2 and result["errors"] == []
    assert any("Mobiel" in w for w in result["warnings"])  # read, not stored
    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 6)

    listed = school.listed()
    assert sorted((r["first_name"], r["last_name"]) for r in listed) == [
        ("Anne-Sophie", "van 't Hof"),
        ("Daan", "Bakker"),
        ("Fleur", "van der Berg"),
        ("Lucas", "Jansen"),
        ("Mohammed", "el Amrani"),
        ("Zoë", "de Vries"),
    ]
    assert {(r["school_id"], r["school_year"], r["consent"]) for r in listed} == {
        ("farel-college", 3, "not_required")  # 15-year-olds: the school's legal basis
    }
    with school.db() as uow:
        registrations = uow.session.scalars(select(Registration)).all()
        numbers = set(uow.session.scalars(select(Person.student_number)))
    assert len(registrations) == 6 and {r.legal_basis for r in registrations} == {"school"}
    assert numbers == {"301187", "301188", "301190", "301193", "301201", "301204"}
    events = signed_up_events(school.db)
    assert len(events) == 6
    assert {(e["school_id"], e["consent_required"], e["role"]) for e in events} == {
        ("farel-college", False, "pupil")
    }
    assert {e["registration_id"] for e in events} == {r["registration_id"] for r in listed}


def test_a_corrected_file_updates_details_and_creates_no_duplicates(school):
    school.upload(MAGISTER)
    corrected = (
        MAGISTER.replace(b";;0687654321", b";fleur@leerling.example;0687654321")  # an address
        .replace(b"301204;", b";")  # Lucas without his number: found by name and birth date
        .replace(b"Jansen;3B", b"JANSEN;3B")
    )

    answer = school.upload(corrected)

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 2, 4)
    assert len(school.listed()) == 6
    with school.db() as uow:
        fleur = uow.session.scalar(select(Person).where(Person.first_name == "Fleur"))
        assert fleur.email == "fleur@leerling.example"


def test_a_file_with_errors_names_every_line_and_stores_nothing(school):
    answer = school.upload(WITH_ERRORS)

    assert answer.status_code == 422
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["code"] == "roster-invalid"
    assert [(e["row"], e["field"]) for e in problem["errors"]] == [
        (3, "date_of_birth"),
        (4, "first_name"),
        (5, "class"),
        (5, "email"),
        (6, "row"),
    ]
    assert "niets opgeslagen" in problem["detail"]
    assert school.listed() == [] and signed_up_events(school.db) == []


def test_a_rule_of_the_sign_up_is_an_error_of_its_line(school):
    """A birth date that makes a pupil 5 on the day: the single sign-up's age rule, on line 3."""
    young = (SOON - timedelta(days=5 * 365 + 30)).strftime("%d-%m-%Y")
    data = f"Roepnaam;Achternaam;Klas;Geboortedatum\nSem;Smit;3B;14-03-2011\nJip;Kok;3B;{young}\n"

    answer = school.upload(data.encode())

    assert answer.status_code == 422
    assert [(e["row"], e["field"]) for e in answer.json()["errors"]] == [(3, "date_of_birth")]
    assert "Leeftijd" in answer.json()["errors"][0]["message"]
    assert school.listed() == []


def test_valid_rows_only_stores_the_good_lines_and_reports_the_others(school):
    answer = school.upload(WITH_ERRORS, valid_rows_only="true")

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["created"] == 2
    assert sorted({e["row"] for e in result["errors"]}) == [3, 4, 5, 6]
    assert sorted(r["first_name"] for r in school.listed()) == ["Lars", "Sanne"]


def test_a_dry_run_says_what_would_happen_and_stores_nothing(school):
    checked = school.upload(MAGISTER, dry_run="true")
    refused = school.upload(WITH_ERRORS, dry_run="true")

    assert checked.status_code == 200, checked.text
    assert checked.json()["dry_run"] is True and checked.json()["created"] == 6
    assert refused.status_code == 422
    assert school.listed() == [] and signed_up_events(school.db) == []


def test_school_b_neither_sees_nor_matches_nor_touches_school_as_pupils(school):
    mine = school.upload(MAGISTER)
    theirs = school.upload(MAGISTER, as_="school_b")  # the same names, numbers and dates
    into_a = school.upload(MAGISTER, as_="school_b", school_id="farel-college")

    assert (mine.status_code, theirs.status_code) == (200, 200)
    assert theirs.json()["created"] == 6  # its own pupils, not A's
    assert into_a.status_code == 403
    a_list, b_list = school.listed("school_a"), school.listed("school_b")
    assert {r["school_id"] for r in a_list} == {"farel-college"}
    assert {r["school_id"] for r in b_list} == {"het-element"}
    assert not {r["person_id"] for r in a_list} & {r["person_id"] for r in b_list}


def test_who_may_upload_and_for_which_school(school):
    operator_without_school = school.upload(MAGISTER, as_="operator")
    operator = school.upload(MAGISTER, as_="operator", school_id="het-element")
    unknown = school.upload(MAGISTER, as_="operator", school_id="bestaat-niet")

    assert operator_without_school.status_code == 422
    assert operator_without_school.json()["errors"][0]["field"] == "school_id"
    assert operator.status_code == 200 and operator.json()["school_id"] == "het-element"
    assert unknown.status_code == 422
    for role in ("website", "host"):
        assert school.upload(MAGISTER, as_=role).status_code == 403
    assert school.upload(MAGISTER, activity="bestaat-niet").status_code == 404


def test_a_cancelled_pupil_is_refused_on_a_reupload_not_signed_up_again(school):
    school.upload(MAGISTER)
    daan = next(r for r in school.listed() if r["first_name"] == "Daan")
    school.call("DELETE", f"/registrations/{daan['registration_id']}")

    answer = school.upload(MAGISTER)

    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["created"], result["unchanged"], result["refused"]) == (0, 5, 1)
    assert result["refusals"][0]["row"] == 3  # Daan's line
    assert "afgemeld" in result["refusals"][0]["message"]


def test_an_activity_not_for_pupils_or_closed_refuses_the_whole_file(school):
    school.publish("decanen", kind="decanen_meeting")
    closed_at = datetime.now(UTC) - timedelta(hours=1)
    school.publish("voorbij", sign_up_closes_at=closed_at.isoformat())

    for_professionals = school.upload(MAGISTER, activity="decanen")
    closed = school.upload(MAGISTER, activity="voorbij")

    assert for_professionals.status_code == 422
    assert for_professionals.json()["errors"][0]["field"] == "activity_id"
    assert closed.status_code == 409 and closed.json()["code"] == "sign-up-closed"


def test_too_many_pupils_or_bytes_is_413_and_stores_nothing(school):
    line = "{n};Sem;;Smit;3B;14-03-2011;\r\n"
    header = "Stamnummer;Roepnaam;Tussenvoegsel;Achternaam;Klas;Geboortedatum;E-mail\r\n"
    many = header + "".join(line.format(n=900000 + n) for n in range(MAX_ROWS + 1))
    big = header + "".join(line.format(n=n) for n in range(10)) + " " * MAX_BYTES

    rows = school.upload(many.encode())
    size = school.upload(big.encode())
    size_form = school.call(
        "POST", "/activities/klas/rosters", files={"file": ("klas.csv", big.encode(), "text/csv")}
    )

    for answer in (rows, size, size_form):
        assert answer.status_code == 413, answer.text
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert "splits" in answer.json()["detail"]
    assert school.listed() == []


def test_an_xlsx_body_and_a_multipart_form_are_read_as_the_csv(school):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for line in MAGISTER.decode("utf-8-sig").splitlines():
        sheet.append(line.split(";"))
    out = io.BytesIO()
    workbook.save(out)

    as_xlsx = school.upload(out.getvalue(), media_type=XLSX)
    as_form = school.call(
        "POST", "/activities/klas/rosters", files={"file": ("3b.csv", MAGISTER, "text/csv")}
    )
    no_file = school.call(
        "POST", "/activities/klas/rosters", files={"bestand": ("3b.csv", MAGISTER, "text/csv")}
    )
    pdf = school.upload(b"%PDF-1.7 ...", media_type="text/csv")
    json_body = school.upload(b"{}", media_type="application/json")

    assert as_xlsx.status_code == 200, as_xlsx.text
    assert as_xlsx.json()["created"] == 6
    assert as_form.status_code == 200, as_form.text
    assert (as_form.json()["created"], as_form.json()["unchanged"]) == (0, 6)
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["field"] == "file"
    assert pdf.status_code == 415 and "PDF" in pdf.json()["detail"]
    assert json_body.status_code == 415


def test_the_templates_for_an_info_day_have_the_choice_columns(school):
    sessions = [
        {"session_id": f"s{i}", "title": f"Voorlichting {i}", "capacity": 30, "rounds": [1, 2, 3]}
        for i in range(1, 6)
    ]
    rounds = [
        {
            "round": r,
            "starts_at": (SOON + timedelta(hours=r)).isoformat(),
            "ends_at": (SOON + timedelta(hours=r, minutes=45)).isoformat(),
        }
        for r in (1, 2, 3)
    ]
    school.publish("infodag", kind="infoday", rounds=rounds, sessions=sessions)

    as_csv = school.call("GET", "/activities/infodag/rosters/template.csv")
    as_xlsx = school.call("GET", "/activities/infodag/rosters/template.xlsx")
    plain = school.call("GET", "/activities/klas/rosters/template.csv")

    assert as_csv.status_code == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    header = as_csv.content.decode("utf-8-sig").splitlines()[0]
    assert header.endswith("Keuze 1;Keuze 2;Keuze 3;Reserve")
    assert as_xlsx.status_code == 200 and as_xlsx.content.startswith(b"PK")
    assert "Keuze" not in plain.content.decode("utf-8-sig")
    website = school.call("GET", "/activities/infodag/rosters/template.csv", "website")
    assert website.status_code == 403


def test_the_same_file_uploaded_twice_at_once_signs_each_pupil_up_once(school):
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: school.upload(MAGISTER), range(2)))

    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert sorted(a.json()["created"] for a in answers) == [0, 6]
    assert len(school.listed()) == 6 and len(signed_up_events(school.db)) == 6
