"""The one mapping from registration's domain exceptions to problem+json answers.

Texts are Dutch (school staff and, through the website, pupils read them) and name no person:
errors reach the logs.
"""

from __future__ import annotations

from lob_common.http import Problem, forbidden, invalid, not_found, unauthorized
from lob_common.timeutil import local
from registration.domain.errors import (
    ActivityCancelled,
    ActivityInUse,
    AlreadySignedUp,
    IdempotencyKeyReused,
    InvalidInput,
    InvalidSignUp,
    KeyNameTaken,
    NoPlanYet,
    NotAllowed,
    NotFound,
    NotHistorical,
    PreconditionFailed,
    PreconditionRequired,
    RegistrationError,
    SchedulingUnavailable,
    SignUpClosed,
    SignUpNotOpenYet,
    Unauthenticated,
)
from registration.domain.roster import RosterError, RosterTooLarge, RosterUnreadable
from registration.domain.roster_sign_up import InvalidRoster


def problem_for(error: RegistrationError) -> Problem:
    roster_problem = _roster_problem(error) or participant_problem(error)
    if roster_problem is not None:
        return roster_problem
    match error:
        case Unauthenticated():
            return unauthorized()
        case NotAllowed(detail=detail):
            return forbidden(detail)
        case InvalidSignUp(violations=violations) | InvalidInput(violations=violations):
            return invalid([{"field": v.field, "message": v.message} for v in violations])
        case IdempotencyKeyReused(key=key):
            return Problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key al gebruikt",
                f"De Idempotency-Key '{key[:100]}' is al gebruikt voor een ander verzoek; "
                "gebruik een nieuwe sleutel voor een nieuwe aanmelding.",
            )
        case SignUpNotOpenYet(activity_title=title, opens_at=opens_at):
            return Problem(
                409,
                "sign-up-not-open",
                "Aanmelding nog niet open",
                f"De aanmelding voor '{title}' opent op {local(opens_at):%d-%m-%Y %H:%M}.",
            )
        case ActivityCancelled(activity_title=title):
            return Problem(
                409, "activity-cancelled", "Activiteit afgelast", f"'{title}' is afgelast."
            )
        case ActivityInUse(obstacles=obstacles):
            return Problem(
                409,
                "activity-in-use",
                "Er zijn al aanmeldingen",
                " ".join(obstacles) + " Verplaats of annuleer die aanmeldingen eerst.",
            )
        case NotHistorical(activity_title=title):
            return Problem(
                409,
                "activity-not-historical",
                "Geen historische activiteit",
                f"'{title}' is geen historische activiteit: deelnemers melden zich daar zelf "
                'aan. Publiceer een voorbije activiteit met "historical": true om haar '
                "deelnemers te laden.",
            )
        case PreconditionRequired():
            return Problem(
                428,
                "if-match-required",
                "If-Match ontbreekt",
                "Deze activiteit bestaat al. Haal haar op (GET /activities/{id}) en stuur haar "
                "ETag mee als If-Match, zodat u geen wijziging van een ander overschrijft.",
            )
        case PreconditionFailed():
            return Problem(
                412,
                "stale-etag",
                "Intussen gewijzigd",
                "De activiteit is gewijzigd sinds u haar ophaalde. Haal haar opnieuw op en "
                "breng uw wijziging daarin aan.",
                headers={"ETag": f'"{error.current_etag}"'},
            )
        case KeyNameTaken(name=name):
            return Problem(
                409, "key-name-taken", "Naam al in gebruik", f"Er is al een sleutel '{name}'."
            )
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


def participant_problem(error: RegistrationError) -> Problem | None:
    """The refusals of the consent, personal-link and attendance flows (docs/consent.md)."""
    from registration.domain.consent import ConsentNotOpen
    from registration.domain.errors import AttendanceRowsRefused, TooLateToCancel
    from registration.domain.links import LinkRefused

    match error:
        case LinkRefused():
            code = type(error).__name__.removeprefix("Link").lower()
            return Problem(error.status, f"link-{code}", error.title, error.detail)
        case ConsentNotOpen(title=title, detail=detail, status=status):
            return Problem(status, "consent-not-open", title, detail)
        case TooLateToCancel(until=until):
            return Problem(
                409,
                "too-late-to-cancel",
                "Afmelden kan niet meer",
                f"Afmelden via de link kon tot {local(until):%d-%m-%Y %H:%M}; neem contact op "
                "met je school.",
            )
        case AttendanceRowsRefused(problems=problems):
            return invalid(
                [{"row": p.row, "field": p.field, "message": p.message} for p in problems],
                "Er is niets geregistreerd: verbeter de genoemde regels en upload het bestand "
                "opnieuw.",
            )
    return None


def _roster_problem(error: RegistrationError) -> Problem | None:
    """A class roster's refusals: too large (413), not a table (415), a file that makes no
    roster (422), lines to fix (422, each in `errors` with its line)."""
    match error:
        case RosterTooLarge(message=message):
            return Problem(413, "roster-too-large", "Bestand te groot", message)
        case RosterUnreadable(message=message) if error.unsupported_format:
            return Problem(415, "roster-not-a-table", "Geen tabel", message)
        case RosterUnreadable(message=message):
            return Problem(422, "roster-unreadable", "Klassenlijst niet te lezen", message)
        case InvalidRoster(problems=problems, lines=lines):
            bad = len({p.row for p in problems})
            return Problem(
                422,
                "roster-invalid",
                "De klassenlijst klopt niet",
                f"{bad} van de {lines} regels moeten worden verbeterd (zie errors: regel, kolom, "
                "wat te doen). Er is niets opgeslagen. Verbeter het bestand en upload het "
                "opnieuw, of stuur ?valid_rows_only=true om alleen de goede regels aan te melden.",
                [{"row": p.row, "field": p.field, "message": p.message} for p in problems],
            )
        case RosterError(message=message):
            return Problem(422, "roster-unreadable", "Klassenlijst niet te lezen", message)
    return None
