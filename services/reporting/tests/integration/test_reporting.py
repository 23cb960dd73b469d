"""Reporting counts participation from events, exactly once, and never keeps who it was."""

import io
from datetime import UTC, datetime

import openpyxl
import pytest
import requests
from sqlalchemy import select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import (
    OPERATOR_KEY,
    TcpProxy,
    base_url,
    poll,
    publish_event,
    sample,
    service_test_config,
)
from reporting.adapters.tables import Base, Participation
from reporting.schemas import ProblemOut, ReportOut
from reporting.service import ReportingService

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).isoformat()


@pytest.fixture
def reporting(broker, database_url, container_factory):
    config = service_test_config("reporting", broker, database_url)
    container = container_factory(ReportingService, config)
    container.start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    yield Reporting(base_url(config), broker, db)
    db.engine.dispose()


class Reporting:
    def __init__(self, url, broker, db):
        self.url, self.broker, self.db = url, broker, db

    def report(self, activity_id="a1"):
        response = requests.get(
            f"{self.url}/reports/participation",
            params={"activity_id": activity_id},
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        )
        assert response.status_code == 200, response.text
        [row] = response.json()["activities"] or [{"participants": 0}]
        return row

    def sign_up(self, registration_id="r1", person_id="p1"):
        return publish_event(
            self.broker,
            "signed_up",
            sample("signed_up", registration_id=registration_id, person_id=person_id),
        )

    def facts(self):
        with self.db() as uow:
            return uow.session.scalars(select(Participation)).all()


def test_a_sign_up_is_counted_once_even_when_delivered_twice(reporting):
    event = reporting.sign_up()
    poll(lambda: reporting.report()["participants"] == 1, what="the count of 1")

    publish_event(reporting.broker, "signed_up", {}, event=event)
    reporting.sign_up(registration_id="r2", person_id="p2")

    poll(lambda: reporting.report()["participants"] == 2, what="the second pupil counted")
    assert len(reporting.facts()) == 2


def test_cancellation_and_attendance_update_the_figures(reporting):
    reporting.sign_up("r1", "p1")
    reporting.sign_up("r2", "p2")
    poll(lambda: reporting.report()["participants"] == 2, what="two sign-ups")

    publish_event(
        reporting.broker,
        "sign_up_cancelled",
        sample("sign_up_cancelled", registration_id="r1", person_id="p1"),
    )
    publish_event(
        reporting.broker,
        "attendance_recorded",
        sample("attendance_recorded", registration_id="r2", person_id="p2", attended=True),
    )

    row = poll(
        lambda: (r := reporting.report())["attended"] == 1 and r["cancelled"] == 1 and r,
        what="cancellation and attendance applied",
    )
    assert row["participants"] == 1


def test_erasure_removes_the_link_to_the_person_but_keeps_the_count(reporting):
    reporting.sign_up("r1", "p1")
    poll(lambda: reporting.report()["participants"] == 1, what="the sign-up")

    publish_event(reporting.broker, "person_erased", {"person_id": "p1", "erased_at": NOW})

    poll(lambda: reporting.facts()[0].person_id is None, what="the person link removed")
    [fact] = reporting.facts()
    assert fact.registration_id is None
    assert reporting.report()["participants"] == 1


def test_the_figures_need_the_operator_key(reporting):
    response = requests.get(f"{reporting.url}/reports/participation")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def _get(reporting, path, key=OPERATOR_KEY, **params):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.get(f"{reporting.url}{path}", params=params, headers=headers, timeout=10)


INFODAY = "2024-11-14T08:45:00+01:00"


def _season(reporting, pupils):
    """Schools, the info day, and `pupils` {school: n} signed up, through the broker."""
    for school, name in (("farel", "Farel College"), ("atrium", "'t Atrium")):
        publish_event(
            reporting.broker,
            "school_registered",
            sample("school_registered", school_id=school, name=name),
        )
    publish_event(
        reporting.broker,
        "activity_published",
        sample(
            "activity_published",
            activity_id="vld",
            kind="infoday",
            title="Voorlichtingsdag MBO-beroepen",
            starts_at=INFODAY,
            ends_at=INFODAY,
            audience=["pupils"],
        ),
    )
    n = 0
    for school, count in pupils.items():
        for _ in range(count):
            n += 1
            publish_event(
                reporting.broker,
                "signed_up",
                sample(
                    "signed_up",
                    registration_id=f"r{n}",
                    person_id=f"p{n}",
                    activity_id="vld",
                    activity_starts_at=INFODAY,
                    school_id=school,
                ),
            )
    poll(
        lambda: (
            _get(reporting, "/reports/tabel-3a", school_year="2024-2025", exact="true").json()[
                "totals"
            ]["total"]
            == n
        ),
        what=f"{n} pupils in Tabel 3a",
    )


def test_tabel_3a_as_json_csv_and_xlsx_with_small_counts_suppressed(reporting):
    _season(reporting, {"farel": 12, "atrium": 3})

    published = _get(reporting, "/reports/tabel-3a", school_year="2024-2025")
    exact = _get(reporting, "/reports/tabel-3a", school_year="2024-2025", exact="true")
    csv_text = _get(reporting, "/reports/tabel-3a", school_year="2024-2025", format="csv")
    xlsx = _get(reporting, "/reports/tabel-3a", school_year="2024-2025", format="xlsx")

    assert published.status_code == 200 and ReportOut().validate(published.json()) == {}
    rows = {r["label"]: (r["cells"], r["total"]) for r in published.json()["sections"][0]["rows"]}
    # 't Atrium's 3 shows as "<5"; Farel's 12 would give it away through the total of 15.
    assert rows == {"'t Atrium": (["<5"], "<5"), "Farel College": (["x"], "x")}
    assert published.json()["totals"]["total"] == 15
    exact_rows = {r["label"]: r["total"] for r in exact.json()["sections"][0]["rows"]}
    assert exact_rows == {"'t Atrium": 3, "Farel College": 12}
    assert csv_text.headers["Content-Type"].startswith("text/csv")
    assert "tabel-3a-2024-2025.csv" in csv_text.headers["Content-Disposition"]
    assert csv_text.text.splitlines() == [
        "School;Voorlichtingsdag MBO-beroepen (14-11-2024);Totaal",
        "'t Atrium;<5;<5",
        "Farel College;x;x",
        "TOTAAL;15;15",
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet["A1"].value.startswith("Tabel 3a: Overzicht regionale activiteiten")
    values = [[c for c in row] for row in sheet.iter_rows(min_row=4, max_row=7, values_only=True)]
    assert values == [
        ["School", "Voorlichtingsdag MBO-beroepen (14-11-2024)", "Totaal"],
        ["'t Atrium", "<5", "<5"],
        ["Farel College", "x", "x"],
        ["TOTAAL", 15, 15],
    ]


def test_a_bad_query_is_a_problem_that_names_what_to_fix_and_the_document_lists_it(reporting):
    wrong_year = _get(reporting, "/reports/tabel-3a", school_year="2024/2025")
    after_programme = _get(reporting, "/reports/tabel-3a", school_year="2026-2027")
    unknown = _get(reporting, "/reports/tabel-9")
    no_key = _get(reporting, "/reports/tabel-3a", key=None, school_year="2024-2025")
    document = requests.get(f"{reporting.url}/openapi.json", timeout=10).json()

    assert wrong_year.status_code == 422
    assert wrong_year.headers["Content-Type"] == "application/problem+json"
    assert wrong_year.json()["errors"][0]["field"].startswith("school_year")
    assert after_programme.status_code == 422
    assert "programme-12-27" in after_programme.json()["errors"][0]["message"]
    assert unknown.status_code == 404 and "tabel-3a" in unknown.json()["detail"]
    assert no_key.status_code == 401
    for problem in (wrong_year, after_programme, unknown, no_key):
        assert ProblemOut().validate(problem.json()) == {}
    assert {"/reports/{table}", "/reports/participation"} <= set(document["paths"])
    assert "ReportOut" in document["components"]["schemas"]


def test_after_a_broker_outage_it_is_not_ready_until_its_consumer_is_back(
    broker, tmp_path, container_factory
):
    proxy = TcpProxy(5672)
    proxy.open()
    config = service_test_config("reporting", proxy.url(broker), f"sqlite:///{tmp_path}/r.db")
    container = container_factory(ReportingService, config)
    container.start()
    url = base_url(config)
    try:
        poll(lambda: _readiness(url) == (200, "ok"), what="ready with the consumer connected")

        proxy.close()  # the broker goes away and every connection to it is cut

        poll(lambda: _readiness(url)[0] == 503, what="not ready while the broker is away")
        assert _readiness(url)[1] != "ok"
        proxy.open()
        poll(
            lambda: _readiness(url) == (200, "ok"),
            timeout=60,
            what="ready again once the consumer has reconnected",
        )
    finally:
        if not proxy.is_open:
            proxy.open()
        container.stop()
        proxy.close()


def _readiness(url):
    response = requests.get(f"{url}/readyz", timeout=5)
    return response.status_code, response.json()["checks"].get("consumer")
