"""API keys, the roles they carry and what each role may do.

A key is named, stored as a SHA-256 hash only, and revocable. It resolves to a Caller (role,
school, name); what a role may do is the table SCOPES, so a new role is a new row, not new ifs
in the use cases. Which records a caller sees (a school: its own people; a host: its own
activities' lists) is Caller.sees. The operator key from config (OPERATOR_KEY) is never stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lob_common.db import DatabaseHandle, utcnow
from lob_common.http import same_secret
from registration.adapters.repository import Repository
from registration.adapters.tables import ApiKey
from registration.domain.caller import Caller, CallerRole
from registration.domain.errors import (
    InvalidInput,
    KeyNameTaken,
    NotAllowed,
    Unauthenticated,
    UnknownKey,
    UnknownSchool,
)
from registration.domain.rules import RuleViolation

OPERATOR_KEY_NAME = "operator"
KEY_PREFIX = "lob_"
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Scope(StrEnum):
    """One thing a key may do."""

    READ_CATALOGUE = "catalogue:read"
    PUBLISH_ACTIVITIES = "catalogue:write"
    READ_SCHOOLS = "schools:read"
    SIGN_UP = "registrations:write"
    UPLOAD_ROSTERS = "rosters:write"  # sign a class up from a file (and get its template)
    CANCEL = "registrations:cancel"
    READ_REGISTRATIONS = "registrations:read"
    READ_PROGRAMMES = "programmes:read"
    READ_ROOM_LISTS = "room-lists:read"
    ERASE_PERSONS = "persons:erase"
    EXPORT_PERSONS = "persons:export"
    RECORD_ATTENDANCE = "attendance:write"
    WRITE_SCHOOLS = "schools:write"
    IMPORT_HISTORY = "history:write"


SCOPES: dict[CallerRole, frozenset[Scope]] = {
    CallerRole.OPERATOR: frozenset(Scope),
    CallerRole.SCHOOL: frozenset(
        {
            Scope.READ_CATALOGUE,
            Scope.READ_SCHOOLS,
            Scope.SIGN_UP,
            Scope.UPLOAD_ROSTERS,
            Scope.CANCEL,
            Scope.READ_REGISTRATIONS,
            Scope.READ_PROGRAMMES,
        }
    ),
    # The regional site signs people up (pupils and young adults: Caller.may_sign_up_for) and
    # reads nothing personal back.
    CallerRole.WEBSITE: frozenset({Scope.READ_CATALOGUE, Scope.READ_SCHOOLS, Scope.SIGN_UP}),
    # An mbo college reads who comes to the activities it hosts (Caller.sees).
    CallerRole.HOST: frozenset(
        {
            Scope.READ_CATALOGUE,
            Scope.READ_SCHOOLS,
            Scope.READ_REGISTRATIONS,
            Scope.READ_ROOM_LISTS,
            Scope.RECORD_ATTENDANCE,  # of the activities it hosts (handlers_attendance)
        }
    ),
}
# The roles whose key acts for one school (or, for a host, is one college).
ROLES_WITH_SCHOOL = frozenset({CallerRole.SCHOOL, CallerRole.HOST})


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


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def caller_for(db: DatabaseHandle, token: str | None, operator_key: str | None) -> Caller | None:
    """The caller a bearer token stands for; None for no token, an unknown or a revoked one."""
    if same_secret(token, operator_key):
        return Caller(CallerRole.OPERATOR, key_name=OPERATOR_KEY_NAME)
    if not token:
        return None
    return caller_for_hash(db, hash_key(token))


def caller_for_hash(db: DatabaseHandle, key_hash: str) -> Caller | None:
    """The caller a stored key stands for, found by the key's SHA-256: what another service
    sends to ask who a key is, so the key itself never travels (identify_key RPC)."""
    with db() as uow:
        key = Repository(uow.session).active_key(key_hash)
        if key is None:
            return None
        return Caller(CallerRole(key.role), key.school_id, key_name=key.name)


def authenticate(db: DatabaseHandle, token: str | None, operator_key: str | None) -> Caller:
    caller = caller_for(db, token, operator_key)
    if caller is None:
        raise Unauthenticated()
    return caller


# --- managing keys (the `lob key` commands) -----------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: never the key itself (only its hash is stored)."""

    name: str
    role: CallerRole
    school_id: str | None
    created_at: datetime
    revoked_at: datetime | None


def create_key(db: DatabaseHandle, name: str, role: CallerRole, school_id: str | None) -> str:
    """A new named key; returns the key, which is shown once and stored only as a hash."""
    problems = []
    if not KEY_NAME.match(name):
        problems.append(
            RuleViolation("name", "Gebruik letters, cijfers, punt, streepje of liggend streepje.")
        )
    if role in ROLES_WITH_SCHOOL and not school_id:
        problems.append(
            RuleViolation("school", f"Een sleutel met rol {role} hoort bij een school.")
        )
    if role not in ROLES_WITH_SCHOOL and school_id:
        problems.append(
            RuleViolation("school", f"Een sleutel met rol {role} hoort bij geen school.")
        )
    if problems:
        raise InvalidInput(problems)
    key = new_key()
    with db() as uow:
        repo = Repository(uow.session)
        if school_id and repo.school(school_id) is None:
            raise UnknownSchool(school_id)
        if repo.key_named(name) is not None:
            raise KeyNameTaken(name)
        repo.add(
            ApiKey(
                id=str(uuid.uuid4()),
                name=name,
                role=role,
                school_id=school_id,
                key_hash=hash_key(key),
                created_at=utcnow(),
            )
        )
        uow.commit()
    return key


def list_keys(db: DatabaseHandle) -> list[KeyInfo]:
    with db() as uow:
        return [
            KeyInfo(k.name, CallerRole(k.role), k.school_id, k.created_at, k.revoked_at)
            for k in Repository(uow.session).api_keys()
        ]


def revoke_key(db: DatabaseHandle, name: str) -> None:
    """The named key stops working at once; it stays listed as revoked."""
    with db() as uow:
        key = Repository(uow.session).key_named(name)
        if key is None:
            raise UnknownKey(name)
        key.revoked_at = utcnow()
        uow.commit()


def issue_school_key(db: DatabaseHandle, school_id: str) -> str:
    """A school's key, named after the school; a previous key of that name stops working."""
    with db() as uow:
        repo = Repository(uow.session)
        if repo.school(school_id) is None:
            raise UnknownSchool(school_id)
        previous = repo.key_named(school_id)
        if previous is not None:
            previous.revoked_at = utcnow()
            uow.commit()
    return create_key(db, school_id, CallerRole.SCHOOL, school_id)
