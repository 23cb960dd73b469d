"""The sign-up decision as a pure function: no server, no database."""

from datetime import UTC, date, datetime, timedelta

import pytest

from registration.domain.caller import Caller, CallerRole
from registration.domain.errors import (
    ActivityCancelled,
    AlreadySignedUp,
    InvalidSignUp,
    NotAllowed,
    NotYourPupil,
    SignUpClosed,
    SignUpNotOpenYet,
)
from registration.domain.model import (
    Activity,
    Consent,
    Preferences,
    PriorRegistration,
    RegistrationStatus,
    Role,
    School,
    SignUpRequest,
)
from registration.domain.rules import RuleViolation
from registration.domain.sign_up import decide_sign_up, signed_up_payload

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 20, 8, 45, tzinfo=UTC)
OPERATOR = Caller(CallerRole.OPERATOR, key_name="operator")
FAREL = School("farel-college", "Farel College", "vmbo", "Amersfoort")
FAREL_KEY = Caller(CallerRole.SCHOOL, "farel-college", key_name="school:farel-college")
CAREER_EVENT = Activity("loopbaan", "career_event", "Loopbaanevenement", DAY)
NETWORK = Activity("netwerk", "network_meeting", "Lerend Netwerk", DAY)
DECANENKRING = Activity("kring", "decanen_meeting", "Decanenkring", DAY)
INFODAY = Activity(
    "vld",
    "infoday",
    "Voorlichtingsdag",
    DAY,
    sign_up_closes_at=DAY - timedelta(days=3),
    session_ids=frozenset({"S1", "S2", "S3", "S4"}),
)


def pupil(**changes):
    fields = {
        "activity_id": "loopbaan",
        "role": Role.PUPIL,
        "first_name": "Sanne",
        "last_name": "de Vries",
        "email": "sanne@example.nl",
        "date_of_birth": date(2009, 3, 14),
        "school_id": "farel-college",
        "school_year": 4,
    }
    return SignUpRequest(**{**fields, **changes})


def decide(request, activity=CAREER_EVENT, school=FAREL, caller=OPERATOR, prior=(), **kwargs):
    return decide_sign_up(caller, request, activity, school, prior, NOW, **kwargs)


def _fields(exc_info):
    return [v.field for v in exc_info.value.violations]


def test_a_pupil_is_signed_up_with_the_facts_reporting_needs():
    sign_up = decide(pupil())

    assert sign_up.role is Role.PUPIL
    assert sign_up.school == FAREL
    assert (sign_up.phase, sign_up.municipality, sign_up.age_band) == ("vo", "Amersfoort", "16-17")
    assert sign_up.consent is Consent.NOT_REQUIRED


def test_the_age_on_the_day_decides_consent_and_band():
    fifteen_on_the_day = date(2010, 11, 21)  # sixteen one day after the activity

    with pytest.raises(InvalidSignUp) as refused:
        decide(pupil(date_of_birth=fifteen_on_the_day))
    sign_up = decide(pupil(date_of_birth=fifteen_on_the_day, parent_email="ouder@example.nl"))

    assert _fields(refused) == ["parent_email"]
    assert sign_up.consent is Consent.PENDING
    assert sign_up.age_band == "12-15"


def test_a_school_signs_up_only_its_own_pupils_and_that_comes_first():
    request = pupil(school_id="het-element", email=None, activity_id="bestaat-niet")

    with pytest.raises(NotYourPupil):
        decide(request, activity=None, school=None, caller=FAREL_KEY)


def test_a_schools_own_pupil_need_not_name_the_school():
    sign_up = decide(pupil(school_id=None), caller=FAREL_KEY)
    assert sign_up.school == FAREL


def test_every_field_is_named_at_once_and_the_inputs_complaint_wins():
    request = pupil(activity_id="bestaat-niet", school_id="weg", first_name=None)
    input_errors = [RuleViolation("first_name", "Dit veld is verplicht (van het schema).")]

    with pytest.raises(InvalidSignUp) as refused:
        decide(request, activity=None, school=None, input_errors=input_errors)

    assert [(v.field, v.message) for v in refused.value.violations] == [
        ("first_name", "Dit veld is verplicht (van het schema)."),
        ("activity_id", "Onbekende activiteit: bestaat-niet."),
        ("school_id", "Onbekende school: weg."),
    ]


def test_a_pupil_needs_a_school_others_do_not():
    with pytest.raises(InvalidSignUp) as refused:
        decide(pupil(school_id=None), school=None)
    assert _fields(refused) == ["school_id"]

    professional = pupil(role=Role.PROFESSIONAL, school_id=None, date_of_birth=None)
    assert decide(professional, activity=NETWORK, school=None).school is None


@pytest.mark.parametrize(
    ("role", "birth", "fine"),
    [
        (Role.PUPIL, date(2020, 1, 1), False),  # 6 on the day: a typing error
        (Role.PUPIL, date(1990, 1, 1), False),
        (Role.YOUNG_ADULT, date(1998, 11, 21), True),  # 27 on the day
        (Role.YOUNG_ADULT, date(1998, 11, 20), False),  # 28 on the day
        (Role.PROFESSIONAL, date(1960, 1, 1), True),
    ],
)
def test_ages_that_fit_the_role(role, birth, fine):
    request = pupil(role=role, date_of_birth=birth)
    activity = NETWORK if role == Role.PROFESSIONAL else CAREER_EVENT
    if fine:
        decide(request, activity=activity)
        return
    with pytest.raises(InvalidSignUp) as refused:
        decide(request, activity=activity)
    assert _fields(refused)[0] == "date_of_birth"


def test_info_day_preferences_are_checked_and_kept():
    wishes = Preferences(("S1", "S2", "S3"), "S4")
    sign_up = decide(pupil(activity_id="vld", preferences=wishes), activity=INFODAY)
    assert sign_up.preferences.as_dict() == {"choices": ["S1", "S2", "S3"], "backup": "S4"}

    with pytest.raises(InvalidSignUp) as refused:
        decide(pupil(activity_id="vld", preferences=Preferences(("S1",))), activity=INFODAY)
    assert _fields(refused) == ["choices", "backup"]


def test_field_errors_come_before_a_closed_sign_up_and_closed_before_already_signed_up():
    closed = Activity("x", "career_event", "Gesloten", DAY, sign_up_closes_at=NOW)
    prior = [PriorRegistration("x", RegistrationStatus.SIGNED_UP)]

    with pytest.raises(InvalidSignUp):
        decide(pupil(activity_id="x", school_id="weg"), activity=closed, school=None, prior=prior)
    with pytest.raises(SignUpClosed) as shut:
        decide(pupil(activity_id="x"), activity=closed, prior=prior)
    assert shut.value.closed_at == NOW


def test_signed_up_once_per_activity_but_again_after_a_cancellation():
    with pytest.raises(AlreadySignedUp):
        decide(pupil(), prior=[PriorRegistration("loopbaan", RegistrationStatus.SIGNED_UP)])
    decide(pupil(), prior=[PriorRegistration("loopbaan", RegistrationStatus.CANCELLED)])
    decide(pupil(), prior=[PriorRegistration("elders", RegistrationStatus.SIGNED_UP)])


def test_the_event_carries_no_personal_data():
    payload = signed_up_payload(decide(pupil()), "r1", "p1", NOW)

    assert payload["age_band"] == "16-17"
    text = str(payload)
    for personal in ("Sanne", "de Vries", "sanne@example.nl", "2009", "age'"):
        assert personal not in text


def test_a_pupil_cannot_sign_up_for_a_meeting_of_decanen():
    with pytest.raises(InvalidSignUp) as refused:
        decide(pupil(activity_id="kring"), activity=DECANENKRING)

    assert _fields(refused) == ["role"]
    assert "professionals" in refused.value.violations[0].message
    mentor = pupil(activity_id="kring", role=Role.PROFESSIONAL, date_of_birth=None)
    assert decide(mentor, activity=DECANENKRING).role == Role.PROFESSIONAL


def test_an_activity_names_its_own_audience():
    for_young_adults = Activity("x", "other", "Open dag", DAY, audience=frozenset({"young_adults"}))
    with pytest.raises(InvalidSignUp):
        decide(pupil(activity_id="x"), activity=for_young_adults)
    young = pupil(activity_id="x", role=Role.YOUNG_ADULT, school_id=None)
    assert decide(young, activity=for_young_adults, school=None).role == Role.YOUNG_ADULT


def test_a_sign_up_before_it_opens_or_for_a_cancelled_activity_is_refused():
    later = Activity(
        "later", "career_event", "Later", DAY, sign_up_opens_at=NOW + timedelta(days=1)
    )
    called_off = Activity("af", "career_event", "Afgelast", DAY, cancelled_at=NOW)

    with pytest.raises(SignUpNotOpenYet) as not_yet:
        decide(pupil(activity_id="later"), activity=later)
    with pytest.raises(ActivityCancelled):
        decide(pupil(activity_id="af"), activity=called_off)
    assert not_yet.value.opens_at == NOW + timedelta(days=1)
    opened = Activity("o", "career_event", "Open", DAY, sign_up_opens_at=NOW - timedelta(hours=1))
    assert decide(pupil(activity_id="o"), activity=opened)


def test_a_birth_date_after_the_day_is_named_alone():
    with pytest.raises(InvalidSignUp) as refused:
        decide(pupil(date_of_birth=DAY.date() + timedelta(days=10)))
    assert _fields(refused) == ["date_of_birth"]  # no unrelated parent_email


def test_names_of_only_spaces_are_missing():
    with pytest.raises(InvalidSignUp) as refused:
        decide(pupil(first_name="   ", last_name="\t"))
    assert _fields(refused) == ["first_name", "last_name"]


def test_whom_a_school_signs_up_belongs_to_that_school_whatever_the_role():
    mentor = pupil(
        activity_id="netwerk", role=Role.PROFESSIONAL, school_id=None, date_of_birth=None
    )
    assert decide(mentor, activity=NETWORK, caller=FAREL_KEY).school == FAREL


def test_the_website_signs_up_pupils_and_young_adults_of_any_school_but_no_professionals():
    website = Caller(CallerRole.WEBSITE, key_name="website")
    element = School("het-element", "Het Element", "vmbo", "Amersfoort")

    signed = decide(pupil(school_id="het-element"), school=element, caller=website)
    with pytest.raises(NotAllowed, match="website"):
        decide(
            pupil(activity_id="netwerk", role=Role.PROFESSIONAL), activity=NETWORK, caller=website
        )
    assert signed.school == element
