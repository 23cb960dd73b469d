"""The one mapping from registration's domain exceptions to problem+json answers.

Texts are Dutch (school staff and, through the website, pupils read them) and name no person:
errors reach the logs.
"""

from __future__ import annotations

from lob_common.http import Problem, forbidden, invalid, not_found, unauthorized
from lob_common.timeutil import local
from registration.domain.errors import (
    AlreadySignedUp,
    InvalidSignUp,
    NoPlanYet,
    NotAllowed,
    NotFound,
    RegistrationError,
    SchedulingUnavailable,
    SignUpClosed,
    Unauthenticated,
)


def problem_for(error: RegistrationError) -> Problem:
    match error:
        case Unauthenticated():
            return unauthorized()
        case NotAllowed(detail=detail):
            return forbidden(detail)
        case InvalidSignUp(violations=violations):
            return invalid([{"field": v.field, "message": v.message} for v in violations])
        case NotFound():
            return not_found(error.description)
        case SignUpClosed(activity_title=title, closed_at=closed_at):
            return Problem(
                409,
                "sign-up-closed",
                "Aanmelding gesloten",
                f"De aanmelding voor '{title}' is gesloten sinds "
                f"{local(closed_at):%d-%m-%Y %H:%M}.",
            )
        case AlreadySignedUp(activity_title=title):
            return Problem(
                409,
                "already-signed-up",
                "Al aangemeld",
                f"Deze persoon is al aangemeld voor '{title}'.",
            )
        case NoPlanYet(activity_id=activity_id):
            return Problem(
                404,
                "no-plan-yet",
                "Nog geen planning",
                f"Voor {activity_id} is nog geen planning gemaakt; die volgt na het sluiten "
                "van de aanmelding.",
            )
        case SchedulingUnavailable():
            return Problem(
                503,
                "scheduling-unavailable",
                "Planning tijdelijk niet bereikbaar",
                "Probeer het over een minuut opnieuw.",
                headers={"Retry-After": str(SchedulingUnavailable.retry_after_seconds)},
            )
    raise TypeError(f"no problem mapped for {type(error).__name__}")  # a bug: map every error
