"""Registration rules in plain Python: who may sign up, what consent is needed, what they asked.

Pupils under 16 need a parent's consent before their personal data is processed (AVG); the age
that counts is the age on the day of the activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

CONSENT_AGE = 16

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


def consent_required(role: str, birth: date | None, activity_day: date) -> bool:
    return role == "pupil" and birth is not None and age_on(birth, activity_day) < CONSENT_AGE


def phase_of(role: str, school_kind: str | None, given_phase: str | None) -> str | None:
    """The 12-27 programme's phase: from the school for pupils, as stated for others."""
    if role == "pupil" and school_kind:
        return SCHOOL_KIND_PHASE.get(school_kind, "vo")
    if role == "mbo_student":
        return "mbo"
    return given_phase


def check_preferences(
    kind: str,
    choices: list[str],
    backup: str | None,
    ranking: list[str],
    sessions: set[str],
    workshops: set[str],
) -> list[RuleViolation]:
    """Info day: 3 distinct sessions + 1 other backup. Orientation day: 1-3 distinct workshops."""
    problems: list[RuleViolation] = []
    if kind == "infoday":
        if len(choices) != 3:
            problems.append(RuleViolation("choices", "Kies precies 3 voorlichtingen."))
        if len(set(choices)) != len(choices):
            problems.append(RuleViolation("choices", "Kies 3 verschillende voorlichtingen."))
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
                    "backup", "De reserve moet een andere voorlichting zijn dan je 3 keuzes."
                )
            )
    elif kind == "orientation_day":
        if not 1 <= len(ranking) <= 3:
            problems.append(RuleViolation("ranking", "Kies 1 tot 3 workshops, de liefste eerst."))
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
