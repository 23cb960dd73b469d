"""Registration rules in plain Python: who may sign up, what consent is needed, what they asked.

Pupils under 16 need a parent's consent before their personal data is processed (AVG); the age
that counts is the age on the day of the activity.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import date

from registration.domain.model import Role

# Under this age a pupil needs a parent's consent before their data is processed (AVG/UAVG art. 5).
CONSENT_AGE = 16
# Ages outside this range for anyone but a professional are almost surely a typing error.
PLAUSIBLE_AGES = range(10, 31)
# The 12-27 programme: young adults sign up themselves within these ages.
YOUNG_ADULT_AGES = range(12, 28)
# Info day: this many sessions, plus one other as a backup.
INFODAY_CHOICES = 3
# Orientation day: one to this many workshops, the favourite first.
MAX_RANKED_WORKSHOPS = 3

SCHOOL_KIND_PHASE = {
    "vmbo": "vo",
    "havo_vwo": "vo",
    "vo": "vo",
    "pro": "pro_vso",
    "vso": "pro_vso",
    "mbo": "mbo",
    "vavo": "vo",
}


@dataclass(frozen=True)
class RuleViolation:
    field: str
    message: str  # Dutch: shown to the person who signed up


def age_on(birth: date, day: date) -> int:
    """Completed years on `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# The bands of the 12-27 programme (lob_common.contracts.AGE_BANDS), by their first age.
AGE_BAND_STARTS = ((12, "12-15"), (16, "16-17"), (18, "18-22"), (23, "23-27"), (28, "other"))


def age_band(age: int | None) -> str | None:
    """The band that travels in events instead of the exact age; None when the age is unknown."""
    if age is None:
        return None
    band = "other"
    for first, name in AGE_BAND_STARTS:
        if age >= first:
            band = name
    return band


def needs_parent_consent(role: str | None, age: int | None) -> bool:
    return role == Role.PUPIL and age is not None and age < CONSENT_AGE


def check_age(role: str | None, age: int | None) -> list[RuleViolation]:
    """Catches typing errors in the birth date; which ages fit depends on the role."""
    if age is None or role is None:  # missing or did not parse: the input named it
        return []
    if age < 0:
        return [
            RuleViolation("date_of_birth", "De geboortedatum ligt na de dag van de activiteit.")
        ]
    problems: list[RuleViolation] = []
    if age not in PLAUSIBLE_AGES and role != Role.PROFESSIONAL:
        problems.append(
            RuleViolation(
                "date_of_birth", f"Leeftijd op de dag zelf zou {age} zijn; klopt de datum?"
            )
        )
    if role == Role.YOUNG_ADULT and age not in YOUNG_ADULT_AGES:
        first, last = YOUNG_ADULT_AGES[0], YOUNG_ADULT_AGES[-1]
        problems.append(
            RuleViolation(
                "date_of_birth",
                f"Jongeren kunnen zich aanmelden van {first} tot en met {last} jaar.",
            )
        )
    return problems


def check_consent(
    role: str | None, age: int | None, parent_email: str | None
) -> list[RuleViolation]:
    if not needs_parent_consent(role, age) or parent_email:
        return []
    return [
        RuleViolation(
            "parent_email",
            f"Onder de {CONSENT_AGE} is toestemming van een ouder nodig: geef het e-mailadres "
            "van een ouder of verzorger.",
        )
    ]


AUDIENCE_WORDS = {
    "pupils": "leerlingen",
    "professionals": "professionals (decanen, mentoren, LOB-coördinatoren)",
    "parents": "ouders",
    "young_adults": "jongeren",
}


def check_audience(
    title: str, role: Role | None, audience: Sequence[str], fits: bool
) -> list[RuleViolation]:
    """A sign-up's role must be among those the activity is for (e.g. no pupils at a
    decanenkring). `fits`: Activity.is_for(role)."""
    if role is None or fits:
        return []
    words = " en ".join(AUDIENCE_WORDS.get(a, a) for a in audience)
    return [RuleViolation("role", f"'{title}' is alleen voor {words}.")]


def phase_of(role: str | None, school_kind: str | None, given_phase: str | None) -> str | None:
    """The 12-27 programme's phase: from the school for pupils, as stated for others."""
    if role == Role.PUPIL and school_kind:
        return SCHOOL_KIND_PHASE.get(school_kind, "vo")
    if role == Role.MBO_STUDENT:
        return "mbo"
    return given_phase


def check_preferences(
    kind: str,
    choices: Sequence[str],
    backup: str | None,
    ranking: Sequence[str],
    sessions: Set[str],
    workshops: Set[str],
) -> list[RuleViolation]:
    """Info day: 3 distinct sessions + 1 other backup. Orientation day: 1-3 distinct workshops.

    `sessions` and `workshops` are the ids the activity offers.
    """
    problems: list[RuleViolation] = []
    if kind == "infoday":
        if len(choices) != INFODAY_CHOICES:
            problems.append(
                RuleViolation("choices", f"Kies precies {INFODAY_CHOICES} voorlichtingen.")
            )
        if len(set(choices)) != len(choices):
            problems.append(
                RuleViolation("choices", f"Kies {INFODAY_CHOICES} verschillende voorlichtingen.")
            )
        unknown = [c for c in choices if c not in sessions]
        if unknown:
            problems.append(
                RuleViolation("choices", f"Onbekende voorlichting: {', '.join(unknown)}.")
            )
        if backup is None:
            problems.append(RuleViolation("backup", "Kies ook een reservevoorlichting."))
        elif backup not in sessions:
            problems.append(RuleViolation("backup", f"Onbekende voorlichting: {backup}."))
        elif backup in choices:
            problems.append(
                RuleViolation(
                    "backup",
                    "De reserve moet een andere voorlichting zijn dan je "
                    f"{INFODAY_CHOICES} keuzes.",
                )
            )
    elif kind == "orientation_day":
        if not 1 <= len(ranking) <= MAX_RANKED_WORKSHOPS:
            problems.append(
                RuleViolation(
                    "ranking", f"Kies 1 tot {MAX_RANKED_WORKSHOPS} workshops, de liefste eerst."
                )
            )
        if len(set(ranking)) != len(ranking):
            problems.append(RuleViolation("ranking", "Noem elke workshop maar een keer."))
        unknown = [w for w in ranking if w not in workshops]
        if unknown:
            problems.append(RuleViolation("ranking", f"Onbekende workshop: {', '.join(unknown)}."))
    elif choices or backup or ranking:
        problems.append(
            RuleViolation(
                "choices", "Bij deze activiteit kies je geen voorlichtingen of workshops."
            )
        )
    return problems
