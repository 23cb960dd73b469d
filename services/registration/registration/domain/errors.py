"""What a use case can refuse, as domain exceptions.

Each says what went wrong in the domain's words; registration.problems maps every one of them to
the problem+json answer a client gets (one mapping, one place). Their text (str) names fields,
ids and titles, never a person: the HTTP entrypoint logs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from registration.domain.rules import RuleViolation

if TYPE_CHECKING:
    from registration.domain.roster import RowProblem


class RegistrationError(Exception):
    """A refusal a client can act on (never a bug)."""


class Unauthenticated(RegistrationError):
    """No key, or one that is not (or no longer) valid."""


class NotAllowed(RegistrationError):
    """This key may not do this (whatever the data)."""

    def __init__(self, detail: str = "Deze API-sleutel mag dit niet.") -> None:
        super().__init__(detail)
        self.detail = detail


class NotYourPupil(NotAllowed):
    def __init__(self) -> None:
        super().__init__("Een school kan alleen eigen leerlingen aanmelden.")


class InvalidSignUp(RegistrationError):
    """Every field that must change, each with a Dutch message."""

    def __init__(self, violations: Sequence[RuleViolation]) -> None:
        super().__init__(", ".join(v.field for v in violations))
        self.violations = tuple(violations)


class SignUpClosed(RegistrationError):
    def __init__(self, activity_title: str, closed_at: datetime) -> None:
        super().__init__(activity_title)
        self.activity_title = activity_title
        self.closed_at = closed_at


class SignUpNotOpenYet(RegistrationError):
    def __init__(self, activity_title: str, opens_at: datetime) -> None:
        super().__init__(activity_title)
        self.activity_title = activity_title
        self.opens_at = opens_at


class ActivityCancelled(RegistrationError):
    """The activity was called off: no sign-ups, no changes."""

    def __init__(self, activity_title: str) -> None:
        super().__init__(activity_title)
        self.activity_title = activity_title


class AlreadySignedUp(RegistrationError):
    def __init__(self, activity_title: str) -> None:
        super().__init__(activity_title)
        self.activity_title = activity_title


class IdempotencyKeyReused(RegistrationError):
    """The Idempotency-Key was used before for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class InvalidInput(RegistrationError):
    """Input (a query parameter, a changed activity) refused field by field, in Dutch."""

    def __init__(self, violations: Sequence[RuleViolation]) -> None:
        super().__init__(", ".join(v.field for v in violations))
        self.violations = tuple(violations)


class NotHistorical(RegistrationError):
    """Participants were sent for a current activity: they sign up themselves there."""

    def __init__(self, activity_title: str) -> None:
        super().__init__(activity_title)
        self.activity_title = activity_title


class ActivityInUse(RegistrationError):
    """An update would take away what sign-ups depend on; each obstacle is said in Dutch."""

    def __init__(self, obstacles: Sequence[str]) -> None:
        super().__init__("; ".join(obstacles))
        self.obstacles = tuple(obstacles)


class PreconditionRequired(RegistrationError):
    """An update without If-Match: it could overwrite a change the caller has not seen."""


class PreconditionFailed(RegistrationError):
    """If-Match names a version that is no longer the current one."""

    def __init__(self, current_etag: str) -> None:
        super().__init__(current_etag)
        self.current_etag = current_etag


class NotFound(RegistrationError, LookupError):
    """No such record, or not the caller's to see (the answer is the same: no leak)."""

    what = "Dit"

    def __init__(self, ident: str) -> None:
        super().__init__(ident)
        self.ident = ident

    @property
    def description(self) -> str:
        return f"{self.what} {self.ident}"


class UnknownActivity(NotFound):
    what = "Activiteit"


class UnknownRegistration(NotFound):
    what = "Aanmelding"


class UnknownPerson(NotFound):
    what = "Persoon"


class UnknownSchool(NotFound):
    what = "School"


class UnknownKey(NotFound):
    what = "API-sleutel"


class KeyNameTaken(RegistrationError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class NoPlanYet(RegistrationError):
    def __init__(self, activity_id: str) -> None:
        super().__init__(activity_id)
        self.activity_id = activity_id


class SchedulingUnavailable(RegistrationError):
    """Scheduling did not answer in time; the client should try again shortly."""

    retry_after_seconds = 60


class TooLateToCancel(RegistrationError):
    """The personal link no longer cancels (its cut-off before the activity has passed)."""

    def __init__(self, until: datetime) -> None:
        super().__init__("too late")
        self.until = until


class AttendanceRowsRefused(RegistrationError):
    """An attendance file with rows to fix; nothing was recorded (a 422 with a row report)."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} rows")
        self.problems = problems
