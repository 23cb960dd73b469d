"""Attendance from the ticked room list reaches scheduling and reporting: registration,
scheduling and reporting together. The first orientation date's no-shows make the next date's
workshop overbooked, and reporting counts who actually came."""

from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from nameko.testing.services import entrypoint_hook
from sqlalchemy import select

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import OPERATOR_KEY, base_url, poll, service_test_config
from registration.adapters.tables import Base
from registration.demo import seed
from registration.service import RegistrationService
from reporting.adapters.tables import Base as ReportingBase
from reporting.adapters.tables import Participation
from reporting.service import ReportingService
from scheduling.adapters.tables import Attendance, SignUp
from scheduling.adapters.tables import Base as SchedulingBase
from scheduling.service import SchedulingService

pytestmark = pytest.mark.integration
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
FIRST = datetime.now(UTC).replace(microsecond=0) + timedelta(days=20)


@pytest.fixture
def region(broker, tmp_path, container_factory):
    config = service_test_config(
        "registration", broker, f"sqlite:///{tmp_path}/registration.db", RPC_TIMEOUT_SECONDS=5
    )
    container_factory(RegistrationService, config).start()
    scheduling = container_factory(
        SchedulingService,
        service_test_config(
            "scheduling",
            broker,
            f"sqlite:///{tmp_path}/scheduling.db",
            ORIENTATION_MIN_BOOKINGS=1,
            ORIENTATION_MAX_OVERBOOKING=0.5,
        ),
    )
    scheduling.start()
    container_factory(
        ReportingService,
        service_test_config("reporting", broker, f"sqlite:///{tmp_path}/reporting.db"),
    ).start()
    db = DatabaseHandle(make_engine(config["DATABASE_URL"]), Base.metadata)
    seed(db, date.today())
    scheduling_db = DatabaseHandle(
        make_engine(f"sqlite:///{tmp_path}/scheduling.db"), SchedulingBase.metadata
    )
    reporting_db = DatabaseHandle(
        make_engine(f"sqlite:///{tmp_path}/reporting.db"), ReportingBase.metadata
    )
    yield base_url(config), scheduling, scheduling_db, reporting_db
    for handle in (db, scheduling_db, reporting_db):
        handle.engine.dispose()


def orientation_day(url, ident, day, capacity):
    requests.post(
        f"{url}/activities",
        headers=OPERATOR,
        json={
            "id": ident,
            "kind": "orientation_day",
            "title": f"MBO oriëntatiedag {ident}",
            "workshops": [{"workshop_id": "garage", "title": "Autotechniek", "capacity": capacity}],
            "starts_at": day.isoformat(),
            "ends_at": (day + timedelta(hours=2)).isoformat(),
        },
        timeout=30,
    ).raise_for_status()


def sign_up_pupils(url, activity_id, n):
    ids = []
    for i in range(n):
        response = requests.post(
            f"{url}/registrations",
            headers=OPERATOR,
            json={
                "activity_id": activity_id,
                "first_name": f"Pupil{i}",
                "last_name": activity_id,
                "email": f"{activity_id}-{i}@example.nl",
                "date_of_birth": "2009-02-02",
                "school_id": "farel-college",
                "ranking": ["garage"],
            },
            timeout=30,
        )
        response.raise_for_status()
        ids.append(response.json()["registration_id"])
    return ids


def count(db, query):
    with db() as uow:
        return len(uow.session.scalars(query).all())


def plan(scheduling, scheduling_db, activity_id, n):
    poll(
        lambda: count(scheduling_db, select(SignUp).filter_by(activity_id=activity_id)) == n,
        what=f"{n} sign-ups of {activity_id} in scheduling",
    )
    with entrypoint_hook(scheduling, "plan_now") as plan_now:
        return plan_now(activity_id)


def test_a_ticked_room_list_sets_the_next_dates_overbooking_and_the_attended_count(region):
    url, scheduling, scheduling_db, reporting_db = region
    orientation_day(url, "od-1", FIRST, capacity=4)
    orientation_day(url, "od-2", FIRST + timedelta(days=7), capacity=2)
    first = sign_up_pupils(url, "od-1", 4)
    plan(scheduling, scheduling_db, "od-1", 4)
    sheet = requests.get(
        f"{url}/activities/od-1/room-lists", params={"format": "csv"}, headers=OPERATOR, timeout=30
    ).text.splitlines()
    header = sheet[0].split(";")
    came = set(first[:2])
    ticked = [sheet[0]] + [
        line + ("ja" if line.split(";")[header.index("aanmeldingsnummer")] in came else "nee")
        for line in sheet[1:]
    ]

    uploaded = requests.post(
        f"{url}/activities/od-1/attendance",
        data="\n".join(ticked).encode(),
        headers={**OPERATOR, "Content-Type": "text/csv"},
        timeout=30,
    )

    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json() == {**uploaded.json(), "present": 2, "absent": 2, "changed": 4}
    poll(
        lambda: count(scheduling_db, select(Attendance)) == 4,
        what="the attendance in scheduling",
    )
    sign_up_pupils(url, "od-2", 4)
    summary = plan(scheduling, scheduling_db, "od-2", 4)
    # half stayed away at the first date: two seats are handed out as three (capped at 50%)
    assert summary["metrics"]["no_show_rates"] == {"garage": 0.5}
    assert summary["assigned"] == 3

    def attended():
        return count(
            reporting_db, select(Participation).filter_by(activity_id="od-1", attended=True)
        )

    assert poll(attended, what="reporting's attended count") == 2
    assert (
        count(reporting_db, select(Participation).filter_by(activity_id="od-1", attended=False))
        == 2
    )
