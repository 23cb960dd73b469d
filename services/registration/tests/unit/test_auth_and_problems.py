"""What each key role may do, and that every domain refusal has its problem+json answer."""

from datetime import UTC, datetime

import pytest

from registration.auth import SCOPES, Scope, may, require
from registration.domain import consent, errors, roster
from registration.domain.caller import Caller, CallerRole
from registration.domain.model import Role
from registration.domain.roster_sign_up import InvalidRoster
from registration.domain.rules import RuleViolation
from registration.problems import problem_for

OPERATOR = Caller(CallerRole.OPERATOR)
FAREL = Caller(CallerRole.SCHOOL, "farel-college")
WEBSITE = Caller(CallerRole.WEBSITE, key_name="website")
MBOA = Caller(CallerRole.HOST, "mbo-amersfoort", key_name="mboa")


def test_every_role_has_its_scopes_and_the_operator_has_all():
    assert set(SCOPES) == set(CallerRole)
    assert all(may(OPERATOR, scope) for scope in Scope)


def test_a_school_key_signs_up_and_reads_but_does_not_run_the_region():
    for scope in (Scope.SIGN_UP, Scope.READ_REGISTRATIONS, Scope.READ_SCHOOLS):
        require(FAREL, scope)
    for scope in (Scope.PUBLISH_ACTIVITIES, Scope.ERASE_PERSONS):
        with pytest.raises(errors.NotAllowed, match="operator"):
            require(FAREL, scope)
    with pytest.raises(errors.NotAllowed):
        require(FAREL, Scope.READ_ROOM_LISTS)


def test_the_website_signs_up_but_reads_no_lists_and_cancels_nothing():
    require(WEBSITE, Scope.SIGN_UP)
    for scope in (Scope.READ_REGISTRATIONS, Scope.CANCEL, Scope.READ_PROGRAMMES):
        with pytest.raises(errors.NotAllowed):
            require(WEBSITE, scope)
    assert WEBSITE.may_sign_up_for("farel-college", Role.PUPIL)
    assert WEBSITE.may_sign_up_for(None, Role.YOUNG_ADULT)
    assert not WEBSITE.may_sign_up_for(None, Role.PROFESSIONAL)
    assert not WEBSITE.sees("farel-college")


def test_a_host_reads_the_lists_of_its_own_activities_only():
    require(MBOA, Scope.READ_REGISTRATIONS)
    for scope in (Scope.SIGN_UP, Scope.CANCEL, Scope.PUBLISH_ACTIVITIES):
        with pytest.raises(errors.NotAllowed):
            require(MBOA, scope)
    assert MBOA.sees("farel-college", host_school_id="mbo-amersfoort")
    assert not MBOA.sees("farel-college", host_school_id="roc-midden-nederland")
    assert not MBOA.sees("mbo-amersfoort", host_school_id=None)


def test_a_school_sees_only_its_own_records():
    assert FAREL.sees("farel-college")
    assert not FAREL.sees("het-element")
    assert not FAREL.sees(None)
    assert OPERATOR.sees("het-element") and OPERATOR.sees(None)


def test_idempotency_keys_are_scoped_per_caller():
    assert FAREL.scoped("k1") != Caller(CallerRole.SCHOOL, "het-element").scoped("k1")
    assert len(OPERATOR.scoped("x" * 500)) == 128


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


EXAMPLES = {
    errors.InvalidSignUp: lambda: errors.InvalidSignUp([RuleViolation("email", "Fout.")]),
    errors.SignUpClosed: lambda: errors.SignUpClosed("Dag", datetime(2026, 11, 17, tzinfo=UTC)),
    errors.AlreadySignedUp: lambda: errors.AlreadySignedUp("Dag"),
    errors.NoPlanYet: lambda: errors.NoPlanYet("vld"),
    errors.SignUpNotOpenYet: lambda: errors.SignUpNotOpenYet(
        "Dag", datetime(2026, 9, 1, tzinfo=UTC)
    ),
    errors.ActivityCancelled: lambda: errors.ActivityCancelled("Dag"),
    errors.NotHistorical: lambda: errors.NotHistorical("Dag"),
    errors.InvalidInput: lambda: errors.InvalidInput([RuleViolation("cursor", "Fout.")]),
    errors.ActivityInUse: lambda: errors.ActivityInUse(["Workshop w1 kan niet weg."]),
    errors.PreconditionFailed: lambda: errors.PreconditionFailed("v2"),
    errors.IdempotencyKeyReused: lambda: errors.IdempotencyKeyReused("k1"),
    errors.KeyNameTaken: lambda: errors.KeyNameTaken("farel"),
    roster.RosterError: lambda: roster.RosterError("Fout."),
    roster.RosterUnreadable: lambda: roster.RosterUnreadable("Fout.", reason="empty"),
    roster.RosterTooLarge: lambda: roster.too_many_rows(5000),
    InvalidRoster: lambda: InvalidRoster([roster.RowProblem(2, "first_name", "Fout.")], 1),
    consent.ConsentNotOpen: lambda: consent.ConsentNotOpen("Al beantwoord", "Niets veranderd."),
    errors.TooLateToCancel: lambda: errors.TooLateToCancel(datetime(2026, 11, 17, tzinfo=UTC)),
    errors.AttendanceRowsRefused: lambda: errors.AttendanceRowsRefused(
        [roster.RowProblem(2, "aanwezig", "Fout.")]
    ),
}


@pytest.mark.parametrize("error_class", list(_all_subclasses(errors.RegistrationError)))
def test_every_refusal_maps_to_a_dutch_problem(error_class):
    make = EXAMPLES.get(error_class)
    if make is None:
        make = (
            (lambda: error_class("x1")) if issubclass(error_class, errors.NotFound) else error_class
        )
    problem = problem_for(make()).to_dict()

    assert 400 <= problem["status"] < 600
    assert problem["title"] and problem["code"]


def test_what_the_problems_say():
    closed = problem_for(EXAMPLES[errors.SignUpClosed]())
    assert (closed.status, closed.code) == (409, "sign-up-closed")
    assert "17-11-2026 01:00" in closed.detail  # shown in Amsterdam time
    assert problem_for(errors.UnknownRegistration("r9")).detail == "Aanmelding r9 bestaat niet."
    assert problem_for(errors.InvalidSignUp([RuleViolation("email", "Fout.")])).errors == [
        {"field": "email", "message": "Fout."}
    ]
    assert problem_for(errors.SchedulingUnavailable()).headers["Retry-After"] == "60"
    assert problem_for(errors.Unauthenticated()).status == 401
    reused = problem_for(EXAMPLES[errors.IdempotencyKeyReused]())
    assert (reused.status, reused.code) == (422, "idempotency-key-reused")
    assert "k1" in reused.detail
    assert problem_for(errors.PreconditionRequired()).status == 428
    stale = problem_for(EXAMPLES[errors.PreconditionFailed]())
    assert (stale.status, stale.headers["ETag"]) == (412, '"v2"')
    in_use = problem_for(EXAMPLES[errors.ActivityInUse]())
    assert in_use.status == 409 and "Workshop w1" in in_use.detail
