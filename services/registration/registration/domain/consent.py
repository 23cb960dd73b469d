"""Parental consent for a pupil under 16 who signed up by themselves (AVG, UAVG art. 5).

Such a sign-up waits (`pending_consent`): stored, not planned, not counted. The parent answers
through a link: consent makes it an ordinary sign-up; a refusal, no answer before the expiry,
or a later withdrawal makes it void and erases the pupil's data after a short grace (so the
outcome can still be mailed). `decide` is the whole decision as a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from registration.domain.errors import RegistrationError
from registration.domain.model import Consent, RegistrationStatus

DEFAULT_TTL = timedelta(days=14)
DEFAULT_ERASE_GRACE = timedelta(seconds=600)


class Answer(StrEnum):
    GIVE = "give"
    REFUSE = "refuse"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class ConsentState:
    status: RegistrationStatus
    consent: Consent
    expires_at: datetime | None


@dataclass(frozen=True)
class Outcome:
    """What an answer changes: the new status and consent, the events to emit (in order), and
    whether the person is to be erased after the grace."""

    status: RegistrationStatus
    consent: Consent
    events: tuple[str, ...]
    refusal_reason: str | None = None
    erase: bool = False


class ConsentNotOpen(RegistrationError):
    """The answer does not fit the state (already answered, expired, cancelled ...); `title`
    and `detail` say so in Dutch, and nothing changes."""

    def __init__(self, title: str, detail: str, status: int = 409) -> None:
        super().__init__(title)
        self.title, self.detail, self.status = title, detail, status


ALREADY = {
    Consent.GIVEN: "U hebt al toestemming gegeven.",
    Consent.REFUSED: "U hebt al laten weten geen toestemming te geven.",
    Consent.EXPIRED: "De termijn om toestemming te geven is verlopen; de aanmelding is vervallen.",
    Consent.WITHDRAWN: "U hebt de toestemming al ingetrokken; de aanmelding is vervallen.",
}


def expires_at(requested_at: datetime, ttl: timedelta = DEFAULT_TTL) -> datetime:
    return requested_at + ttl


def is_expired(state: ConsentState, now: datetime) -> bool:
    return (
        state.status is RegistrationStatus.PENDING_CONSENT
        and state.expires_at is not None
        and now >= state.expires_at
    )


def decide(state: ConsentState, answer: Answer, now: datetime) -> Outcome:
    """The outcome of a parent's answer, or ConsentNotOpen saying why it changes nothing."""
    if state.status is RegistrationStatus.CANCELLED:
        raise ConsentNotOpen(
            "Deze aanmelding is afgemeld",
            "De aanmelding is al afgemeld; er is niets meer om toestemming voor te geven.",
        )
    if answer is Answer.WITHDRAW:
        if state.consent is not Consent.GIVEN:
            raise ConsentNotOpen(
                "Er is geen toestemming om in te trekken",
                ALREADY.get(state.consent, "U hebt (nog) geen toestemming gegeven."),
            )
        return Outcome(
            RegistrationStatus.CANCELLED,
            Consent.WITHDRAWN,
            ("sign_up_cancelled", "consent_refused"),
            refusal_reason="withdrawn",
            erase=True,
        )
    if not may_ask_again(state):
        detail = ALREADY.get(state.consent, "Er is niets veranderd.")
        raise ConsentNotOpen("U hebt al geantwoord", detail)
    if is_expired(state, now):
        raise ConsentNotOpen(
            "De termijn is verlopen",
            "De termijn om toestemming te geven is voorbij; er is niets veranderd.",
            410,
        )
    if answer is Answer.GIVE:
        return Outcome(RegistrationStatus.SIGNED_UP, Consent.GIVEN, ("consent_given", "signed_up"))
    return Outcome(
        RegistrationStatus.WITHDRAWN,
        Consent.REFUSED,
        ("consent_refused",),
        refusal_reason="refused",
        erase=True,
    )


def expire(state: ConsentState, now: datetime) -> Outcome | None:
    """A pending consent past its expiry: void, as a refusal (reason "expired"); else None."""
    if not is_expired(state, now):
        return None
    return Outcome(
        RegistrationStatus.WITHDRAWN,
        Consent.EXPIRED,
        ("consent_refused",),
        refusal_reason="expired",
        erase=True,
    )


def may_ask_again(state: ConsentState) -> bool:
    """Whether a new link may be sent: the consent is still pending (an old link expired)."""
    return state.status is RegistrationStatus.PENDING_CONSENT and state.consent is Consent.PENDING
