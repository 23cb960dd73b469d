"""The rules of loading a finished season (domain/history.py), without servers."""

from datetime import UTC, datetime

import pytest

from registration.domain.errors import ActivityCancelled, InvalidInput, NotHistorical
from registration.domain.history import (
    HistoricalActivity,
    check_historical_publication,
    decide_history,
)
from registration.domain.model import School

SCHOOLS = {
    "farel": School("farel", "Farel College", "vmbo", "Amersfoort"),
    "baander": School("baander", "De Baander", "pro", "Amersfoort"),
}
INFODAY = HistoricalActivity(
    "vld", "infoday", "Voorlichtingsdag", datetime(2024, 11, 14, 12, tzinfo=UTC), True
)
BUS = HistoricalActivity(
    "bus", "bus_tour", "LOB-bustour", datetime(2024, 10, 17, 16, tzinfo=UTC), True
)


def row(key="k1", **fields):
    return {"key": key, "role": "pupil", "school_id": "farel", **fields}


def fields_refused(activity, *rows):
    with pytest.raises(InvalidInput) as refused:
        decide_history(activity, rows, SCHOOLS)
    return {v.field for v in refused.value.violations}


def test_a_pupil_gets_the_band_of_the_age_and_phase_and_place_of_the_school():
    [pupil, pro] = decide_history(
        INFODAY, [row(age=15), row("k2", school_id="baander", age_band="16-17")], SCHOOLS
    )

    assert (pupil.age_band, pupil.phase, pupil.municipality) == ("12-15", "vo", "Amersfoort")
    assert (pro.age_band, pro.phase) == ("16-17", "pro_vso")


def test_a_professional_without_a_school_counts_as_another_institution():
    [record] = decide_history(BUS, [row(role="professional", school_id=None, attended=True)], {})

    assert (record.school_id, record.attended, record.municipality) == (None, True, None)


def test_every_bad_row_is_named_and_nothing_is_decided():
    refused = fields_refused(
        INFODAY,
        row(school_id=None),
        row("k2", school_id="nowhere"),
        row("k3", role="professional"),
        row("k4", age=17, age_band="12-15"),
        row("k1"),
    )

    assert refused == {
        "participants.0.school_id",
        "participants.1.school_id",
        "participants.2.role",
        "participants.3.age_band",
        "participants.4.key",
    }


def test_only_a_historical_activity_takes_a_list():
    current = HistoricalActivity("od", "orientation_day", "Oriëntatiedag", INFODAY.ends_at, False)
    called_off = HistoricalActivity(
        "bus", "bus_tour", "LOB-bustour", BUS.ends_at, True, cancelled=True
    )

    with pytest.raises(NotHistorical):
        decide_history(current, [row()], SCHOOLS)
    with pytest.raises(ActivityCancelled):
        decide_history(called_off, [row(role="professional")], SCHOOLS)


def test_a_historical_activity_is_over():
    now = datetime(2026, 11, 30, tzinfo=UTC)

    assert check_historical_publication(True, datetime(2024, 11, 14, tzinfo=UTC), now) == []
    assert check_historical_publication(False, datetime(2027, 1, 1, tzinfo=UTC), now) == []
    [problem] = check_historical_publication(True, datetime(2027, 1, 1, tzinfo=UTC), now)
    assert problem.field == "historical"


def test_a_record_knows_when_a_load_changes_it():
    [record] = decide_history(BUS, [row(role="professional", attended=True)], SCHOOLS)
    stored = {
        "role": "professional",
        "school_id": "farel",
        "age_band": None,
        "phase": None,
        "municipality": "Amersfoort",
        "attended": True,
    }

    assert not record.differs_from(stored)
    assert record.differs_from({**stored, "attended": False})
