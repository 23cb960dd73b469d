"""Who is calling: the key's role, the school it acts for, and the key's name (for the logs)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from registration.domain.model import Role


class CallerRole(StrEnum):
    """What a key is for; registration.auth says what each role may do (SCOPES)."""

    OPERATOR = "operator"  # the regional project group: everything
    SCHOOL = "school"  # one school: signs up and sees its own people only
    WEBSITE = "website"  # the regional site: signs up pupils and young adults, reads no lists
    HOST = "host"  # an mbo college: reads the lists of the activities it hosts


# The roles a website key may sign up (people sign themselves up through the regional site).
WEBSITE_SIGN_UP_ROLES = frozenset({Role.PUPIL, Role.YOUNG_ADULT})


@dataclass(frozen=True)
class Caller:
    role: CallerRole
    school_id: str | None = None  # school: the school it acts for; host: the college it is
    key_name: str = ""

    @property
    def is_operator(self) -> bool:
        return self.role is CallerRole.OPERATOR

    def sees(self, school_id: str | None, host_school_id: str | None = None) -> bool:
        """Whether a registration of this school (None: of no school), for an activity hosted
        by `host_school_id`, is this caller's to see."""
        if self.is_operator:
            return True
        if self.school_id is None:
            return False
        if self.role is CallerRole.SCHOOL:
            return school_id == self.school_id
        if self.role is CallerRole.HOST:
            return host_school_id == self.school_id
        return False

    def may_sign_up_for(self, school_id: str | None, role: Role | None = None) -> bool:
        """A school signs up its own people only (naming no school is naming its own); the
        website signs up pupils and young adults of any school."""
        if self.is_operator:
            return True
        if self.role is CallerRole.SCHOOL:
            return not school_id or school_id == self.school_id
        if self.role is CallerRole.WEBSITE:
            return role is None or role in WEBSITE_SIGN_UP_ROLES
        return False

    def scoped(self, idempotency_key: str) -> str:
        """An Idempotency-Key as stored: two callers may use the same key independently."""
        return f"{self.role}:{self.school_id or ''}:{idempotency_key}"[:128]
