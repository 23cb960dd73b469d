"""Who is calling: the key's role, the school it acts for, and the key's name (for the logs)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CallerRole(StrEnum):
    """What a key is for. Today: the operator key and one key per school.

    Named keys with the roles `website` (the regional site) and `host` (an mbo college) come
    next; registration.auth says what each role may do.
    """

    OPERATOR = "operator"
    SCHOOL = "school"


@dataclass(frozen=True)
class Caller:
    role: CallerRole
    school_id: str | None = None  # the one school a school key acts for
    key_name: str = ""

    @property
    def is_operator(self) -> bool:
        return self.role is CallerRole.OPERATOR

    def sees(self, school_id: str | None) -> bool:
        """Whether records of this school (None: of no school) are this caller's to see."""
        return self.is_operator or (school_id is not None and school_id == self.school_id)

    def may_sign_up_for(self, school_id: str | None) -> bool:
        """A school signs up its own people only; naming no school is naming its own."""
        return self.is_operator or not school_id or school_id == self.school_id

    def scoped(self, idempotency_key: str) -> str:
        """An Idempotency-Key as stored: two callers may use the same key independently."""
        return f"{self.role}:{self.school_id or ''}:{idempotency_key}"[:128]
