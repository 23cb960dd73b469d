"""API keys, the roles they carry and what each role may do.

Today there are two kinds of key: the operator key (from config, never stored) and one key per
school, stored as a SHA-256 hash. Named, revocable keys with the roles `website` and `host` fit
in here: a key resolves to a Caller (role, school, name), and what a role may do is the table
SCOPES, so a new role is a new row, not new ifs in the use cases. Which records a caller sees
(a school: its own pupils) is Caller.sees.
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum

from lob_common.db import DatabaseHandle
from lob_common.http import same_secret
from registration.adapters.repository import Repository
from registration.domain.caller import Caller, CallerRole
from registration.domain.errors import NotAllowed, Unauthenticated

OPERATOR_KEY_NAME = "operator"
SCHOOL_KEY_PREFIX = "sch_"


class Scope(StrEnum):
    """One thing a key may do."""

    READ_CATALOGUE = "catalogue:read"
    PUBLISH_ACTIVITIES = "catalogue:write"
    READ_SCHOOLS = "schools:read"
    SIGN_UP = "registrations:write"
    READ_REGISTRATIONS = "registrations:read"
    READ_PROGRAMMES = "programmes:read"
    READ_ROOM_LISTS = "room-lists:read"
    ERASE_PERSONS = "persons:erase"


SCOPES: dict[CallerRole, frozenset[Scope]] = {
    CallerRole.OPERATOR: frozenset(Scope),
    CallerRole.SCHOOL: frozenset(
        {
            Scope.READ_CATALOGUE,
            Scope.READ_SCHOOLS,
            Scope.SIGN_UP,
            Scope.READ_REGISTRATIONS,
            Scope.READ_PROGRAMMES,
        }
    ),
}


def may(caller: Caller, scope: Scope) -> bool:
    return scope in SCOPES.get(caller.role, frozenset())


def require(caller: Caller, scope: Scope) -> None:
    """Raise NotAllowed unless the caller's role carries `scope`."""
    if may(caller, scope):
        return
    if all(scope not in scopes for role, scopes in SCOPES.items() if role != CallerRole.OPERATOR):
        raise NotAllowed("Alleen de regionale projectgroep (operator) mag dit.")
    raise NotAllowed()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_school_key() -> str:
    return SCHOOL_KEY_PREFIX + secrets.token_urlsafe(24)


def caller_for(db: DatabaseHandle, token: str | None, operator_key: str | None) -> Caller | None:
    """The caller a bearer token stands for; None for no token or an unknown one."""
    if same_secret(token, operator_key):
        return Caller(CallerRole.OPERATOR, key_name=OPERATOR_KEY_NAME)
    if not token:
        return None
    with db() as uow:
        school_id = Repository(uow.session).school_id_for_key(hash_key(token))
    if school_id is None:
        return None
    return Caller(CallerRole.SCHOOL, school_id, key_name=f"school:{school_id}")


def authenticate(db: DatabaseHandle, token: str | None, operator_key: str | None) -> Caller:
    caller = caller_for(db, token, operator_key)
    if caller is None:
        raise Unauthenticated()
    return caller
