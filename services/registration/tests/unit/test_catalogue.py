"""What an update may not take away from an activity people signed up for (no server)."""

from registration.domain.catalogue import obstacles_to_update
from registration.domain.model import Preferences

SESSIONS = {"sessions": [{"session_id": s} for s in ("S1", "S2", "S3", "S4", "S5")]}
WORKSHOPS = {"workshops": [{"workshop_id": w} for w in ("w1", "w2")]}
BUSES = {"buses": [{"bus_id": "bus-1"}, {"bus_id": "bus-2"}]}
CHOSE = Preferences(("S1", "S2", "S3"), "S4")


def test_without_sign_ups_anything_may_change():
    assert obstacles_to_update("infoday", SESSIONS, "other", {}, []) == []


def test_the_kind_stays_once_people_signed_up():
    [obstacle] = obstacles_to_update("infoday", SESSIONS, "other", {}, [CHOSE])
    assert "infoday" in obstacle and "other" in obstacle and "1 aanmeldingen" in obstacle


def test_a_session_someone_chose_stays_and_one_nobody_chose_may_go():
    fewer = {"sessions": [{"session_id": s} for s in ("S1", "S2", "S3", "S4")]}
    assert obstacles_to_update("infoday", SESSIONS, "infoday", fewer, [CHOSE, CHOSE]) == []

    without_backup = {"sessions": [{"session_id": s} for s in ("S1", "S2", "S3", "S5")]}
    [obstacle] = obstacles_to_update("infoday", SESSIONS, "infoday", without_backup, [CHOSE, CHOSE])
    assert obstacle.startswith("Voorlichting S4") and "2 aanmelding" in obstacle


def test_a_ranked_workshop_and_any_bus_of_a_tour_with_people_stay():
    ranked = Preferences(ranking=("w2",))
    [workshop] = obstacles_to_update(
        "orientation_day",
        WORKSHOPS,
        "orientation_day",
        {"workshops": [{"workshop_id": "w1"}]},
        [ranked],
    )
    [bus] = obstacles_to_update(
        "bus_tour", BUSES, "bus_tour", {"buses": [{"bus_id": "bus-1"}]}, [Preferences()]
    )
    assert "w2" in workshop
    assert "bus-2" in bus
