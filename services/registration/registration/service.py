"""The registration service: HTTP API for schools, participants and operators; RPC for others.

Entrypoints only: each authenticates, calls one use case (registration.handlers) and dumps the
answer through the schema the OpenAPI document is built from. Domain refusals become
problem+json through registration.problems.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from marshmallow import Schema
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from lob_common.db import utcnow
from lob_common.http import Problem, bearer_token, json_response, load, read_json
from lob_common.messaging import RpcProxy, rpc
from lob_common.providers import (
    ApiHandler,
    Database,
    ServiceBase,
    call_with_timeout,
    config_timer,
)
from registration import (
    docs,
    handlers,
    handlers_attendance,
    handlers_consent,
    handlers_personal,
    pages,
)
from registration.adapters.roster_files import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE
from registration.adapters.tables import Base
from registration.auth import Scope, authenticate, require
from registration.domain.caller import Caller
from registration.domain.consent import Answer, ConsentNotOpen
from registration.domain.errors import (
    NoPlanYet,
    RegistrationError,
    SchedulingUnavailable,
    TooLateToCancel,
    UnknownPerson,
)
from registration.domain.links import LinkExpired, LinkRefused
from registration.domain.roster import MAX_BYTES, MAX_ROWS, too_many_bytes
from registration.openapi import IF_MATCH_MAX_LENGTH, openapi_document
from registration.problems import problem_for
from registration.schemas import (
    ActivityIn,
    ActivityListOut,
    ActivityOut,
    HistoryIn,
    HistoryOut,
    PlanOut,
    RegistrationListOut,
    RegistrationOut,
    RegistrationQuery,
    RoomListsOut,
    RosterQuery,
    RosterResultOut,
    SchoolIn,
    SchoolListOut,
    SchoolOut,
    school_from,
)
from registration.schemas_participants import (
    AttendanceFileOut,
    AttendanceIn,
    AttendanceOut,
    MyRegistrationOut,
    PersonExportOut,
)
from registration.views import room_lists_csv

MIGRATIONS = Path(__file__).parent / "migrations"
# Dumped into by every sign-up (one instance: building a schema deep-copies its fields).
REGISTRATION_OUT = RegistrationOut()
log = logging.getLogger(__name__)


class RegistrationApi(ApiHandler):
    """@http whose domain refusals answer as the problem each maps to."""

    def __init__(self, method: str, url: str, **kwargs: Any) -> None:
        kwargs.setdefault("expected_exceptions", (Problem, RegistrationError))
        super().__init__(method, url, **kwargs)

    def response_from_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RegistrationError):
            return problem_for(exc).response()
        return super().response_from_exception(exc)


http = RegistrationApi.decorator


class PageHandler(ApiHandler):
    """@http for the pages opened from a mail: the path holds a token, so the access log shows
    the route instead; the entrypoint renders every refusal as a page itself."""

    def logged_path(self, request: Request) -> str:
        return self.url


page = PageHandler.decorator
PERSONAL_TOKEN_HEADER = "X-Personal-Token"


def reply(
    schema: Schema, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return json_response(schema.dump(data), status, headers)


def if_match(request: Request) -> tuple[str, ...] | None:
    """The strong ETags an update names (("*",) for any); None without If-Match. A value longer
    than any ETag we hand out is refused (400), also where it would not be looked at (a new
    activity), so a client's mistake is said instead of ignored."""
    if "If-Match" not in request.headers:
        return None
    if len(request.headers["If-Match"]) > IF_MATCH_MAX_LENGTH:
        raise Problem(
            400,
            "invalid-header",
            "If-Match klopt niet",
            f"If-Match is langer dan {IF_MATCH_MAX_LENGTH} tekens. Stuur de ETag die "
            "GET /activities/{id} gaf, tussen aanhalingstekens.",
        )
    tags = request.if_match
    return ("*",) if tags.star_tag else tuple(tags.as_set())


def with_etag(response: Response, etag: str) -> Response:
    response.set_etag(etag)
    return response


def download(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        mimetype=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def csv_file(text: str, filename: str) -> Response:
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- class rosters: the file from the request --------------------------------------------------

ROSTER_MEDIA_TYPES = (CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, "multipart/form-data")
MULTIPART_SLACK = 64 * 1024  # the form's boundaries and part headers around the file


def roster_file(request: Request, max_bytes: int) -> tuple[bytes, str | None, str | None]:
    """The uploaded file's bytes, media type and name: the body (text/csv, XLSX), or a
    multipart form's `file` part. Over `max_bytes`: 413 before reading further."""
    if request.mimetype not in ROSTER_MEDIA_TYPES:
        raise Problem(
            415,
            "unsupported-media-type",
            "Verkeerd formaat",
            "Stuur de klassenlijst als text/csv, als Excel-werkmap "
            f"({XLSX_MEDIA_TYPE}) of als formulier (multipart/form-data) met het deel 'file'.",
        )
    multipart = request.mimetype == "multipart/form-data"
    request.max_content_length = max_bytes + (MULTIPART_SLACK if multipart else 0)
    try:
        if not multipart:
            return request.get_data(cache=False), request.mimetype, None
        upload = request.files.get("file")
        if upload is None:
            raise Problem(
                422,
                "validation-error",
                "De invoer klopt niet",
                "Stuur het bestand in het formulierdeel 'file'.",
                [{"field": "file", "message": "Voeg het bestand toe als deel 'file'."}],
            )
        return upload.read(max_bytes + 1), upload.mimetype, upload.filename
    except RequestEntityTooLarge:
        raise too_many_bytes(max_bytes) from None


class RegistrationService(ServiceBase):
    name = "registration"
    db = Database(Base.metadata, MIGRATIONS)
    scheduling = RpcProxy("scheduling")

    def _caller(self, request: Request, scope: Scope) -> Caller:
        caller = authenticate(self.db, bearer_token(request), self.config.get("OPERATOR_KEY"))
        require(caller, scope)
        return caller

    @http("POST", "/registrations")
    def create_registration(self, request: Request) -> Response:
        caller = self._caller(request, Scope.SIGN_UP)
        view, created = handlers.sign_up(
            self.db, read_json(request), caller, request.headers.get("Idempotency-Key")
        )
        location = {"Location": f"/registrations/{view['registration_id']}"}
        return reply(REGISTRATION_OUT, view, 201 if created else 200, location)

    @http("GET", "/registrations")
    def list_registrations(self, request: Request) -> Response:
        """A school's own people, a host's activities, or (operator) all; ?format=csv."""
        caller = self._caller(request, Scope.READ_REGISTRATIONS)
        query = load(RegistrationQuery(), request.args.to_dict())
        if query["format"] == "csv":
            text = handlers.registrations_spreadsheet(self.db, caller, query)
            return csv_file(text, f"aanmeldingen-{query.get('activity_id') or 'alle'}.csv")
        page, next_cursor = handlers.list_registrations(self.db, caller, query)
        return reply(RegistrationListOut(), {"registrations": page, "next_cursor": next_cursor})

    @http("GET", "/registrations/<string:registration_id>")
    def get_registration(self, request: Request, registration_id: str) -> Response:
        caller = self._caller(request, Scope.READ_REGISTRATIONS)
        return reply(REGISTRATION_OUT, handlers.get_registration(self.db, registration_id, caller))

    @http("DELETE", "/registrations/<string:registration_id>")
    def cancel_registration(self, request: Request, registration_id: str) -> Response:
        caller = self._caller(request, Scope.CANCEL)
        reason = request.args.get("reason", "")
        return reply(REGISTRATION_OUT, handlers.cancel(self.db, registration_id, caller, reason))

    @http("DELETE", "/persons/<string:person_id>")
    def erase_person(self, request: Request, person_id: str) -> Response:
        self._caller(request, Scope.ERASE_PERSONS)
        if not handlers.erase_person(self.db, person_id):
            raise UnknownPerson(person_id)
        return Response(status=204)

    @http("GET", "/schools")
    def list_schools(self, request: Request) -> Response:
        self._caller(request, Scope.READ_SCHOOLS)
        return reply(SchoolListOut(), {"schools": handlers.list_schools(self.db)})

    @http("PUT", "/schools/<string:school_id>")
    def put_school(self, request: Request, school_id: str) -> Response:
        """Register a school or institution, or change it (operator); announced when new or
        changed (school_registered)."""
        self._caller(request, Scope.WRITE_SCHOOLS)
        body = read_json(request)
        data = load(SchoolIn(), body)
        school, new = handlers.put_school(self.db, school_from(school_id, data))
        if isinstance(body, dict) and "contact_email" in body:
            handlers.set_school_contact(self.db, school.id, data["contact_email"])
        location = {"Location": f"/schools/{school.id}"}
        return reply(SchoolOut(), school, 201 if new else 200, location)

    @http("POST", "/activities/<string:activity_id>/history")
    def load_history(self, request: Request, activity_id: str) -> Response:
        """The participants of a historical activity (operator): a finished season, loaded."""
        self._caller(request, Scope.IMPORT_HISTORY)
        data = load(HistoryIn(), read_json(request))
        return reply(
            HistoryOut(), handlers.record_history(self.db, activity_id, data["participants"])
        )

    @http("GET", "/activities")
    def list_activities(self, request: Request) -> Response:
        self._caller(request, Scope.READ_CATALOGUE)
        return reply(ActivityListOut(), {"activities": handlers.list_activities(self.db)})

    @http("POST", "/activities")
    def publish_activity(self, request: Request) -> Response:
        """Create, or update with If-Match (the ETag of GET /activities/{id})."""
        self._caller(request, Scope.PUBLISH_ACTIVITIES)
        data = load(ActivityIn(), read_json(request))
        view, created, etag = handlers.publish_activity(self.db, data, if_match(request))
        location = {"Location": f"/activities/{view['id']}"}
        return with_etag(reply(ActivityOut(), view, 201 if created else 200, location), etag)

    @http("GET", "/activities/<string:activity_id>")
    def get_activity(self, request: Request, activity_id: str) -> Response:
        self._caller(request, Scope.READ_CATALOGUE)
        view, etag = handlers.get_activity(self.db, activity_id)
        return with_etag(reply(ActivityOut(), view), etag)

    @http("DELETE", "/activities/<string:activity_id>")
    def cancel_activity(self, request: Request, activity_id: str) -> Response:
        """Call an activity off; its participants are told (notifications)."""
        self._caller(request, Scope.PUBLISH_ACTIVITIES)
        reason = request.args.get("reason", "")
        view, etag = handlers.cancel_activity(self.db, activity_id, reason)
        return with_etag(reply(ActivityOut(), view), etag)

    @http("POST", "/activities/<string:activity_id>/rosters")
    def upload_roster(self, request: Request, activity_id: str) -> Response:
        """Sign a class up from its roster (CSV or XLSX): docs/rosters.md."""
        caller = self._caller(request, Scope.UPLOAD_ROSTERS)
        query = load(RosterQuery(), request.args.to_dict())
        max_bytes = int(self.config.get("ROSTER_MAX_BYTES", MAX_BYTES))
        content, media_type, filename = roster_file(request, max_bytes)
        upload = handlers.RosterUpload(
            activity_id,
            content,
            media_type,
            filename,
            school_id=query.get("school_id"),
            valid_rows_only=query["valid_rows_only"],
            dry_run=query["dry_run"],
            max_bytes=max_bytes,
            max_rows=int(self.config.get("ROSTER_MAX_ROWS", MAX_ROWS)),
        )
        return reply(RosterResultOut(), handlers.upload_roster(self.db, caller, upload))

    @http("GET", "/activities/<string:activity_id>/rosters/template.csv")
    def roster_template_csv(self, request: Request, activity_id: str) -> Response:
        self._caller(request, Scope.UPLOAD_ROSTERS)
        content = handlers.roster_template(self.db, activity_id, "csv")
        return download(content, CSV_MEDIA_TYPE, f"klassenlijst-{activity_id}.csv")

    @http("GET", "/activities/<string:activity_id>/rosters/template.xlsx")
    def roster_template_xlsx(self, request: Request, activity_id: str) -> Response:
        self._caller(request, Scope.UPLOAD_ROSTERS)
        content = handlers.roster_template(self.db, activity_id, "xlsx")
        return download(content, XLSX_MEDIA_TYPE, f"klassenlijst-{activity_id}.xlsx")

    def _plan_call(self, method: Any, activity_id: str, *args: Any) -> Any:
        """Ask scheduling (which owns plans); None from it means no plan yet."""
        try:
            timeout = float(self.config.get("RPC_TIMEOUT_SECONDS", 10))
            answer = call_with_timeout(method, activity_id, *args, timeout=timeout)
        except TimeoutError:
            raise SchedulingUnavailable() from None
        if answer is None:
            raise NoPlanYet(activity_id)
        return answer

    @http("GET", "/activities/<string:activity_id>/programmes")
    def get_programmes(self, request: Request, activity_id: str) -> Response:
        """The plan in force: a school sees its own pupils, the operator everyone."""
        caller = self._caller(request, Scope.READ_PROGRAMMES)
        handlers.activity_for_plans(self.db, activity_id, caller)
        school = None if caller.is_operator else caller.school_id
        plan = self._plan_call(self.scheduling.programmes, activity_id, school)
        return reply(PlanOut(), handlers.with_names(self.db, plan))

    @http("GET", "/activities/<string:activity_id>/room-lists")
    def get_room_lists(self, request: Request, activity_id: str) -> Response:
        """Per session and round, who is in the room (operator); ?format=csv to print."""
        caller = self._caller(request, Scope.READ_ROOM_LISTS)
        handlers.activity_for_plans(self.db, activity_id, caller)
        rooms = self._plan_call(self.scheduling.room_lists, activity_id)
        rooms = handlers.room_lists_with_names(self.db, rooms)
        if request.args.get("format") == "csv":
            return csv_file(room_lists_csv(rooms), f"zaallijsten-{activity_id}.csv")
        return reply(RoomListsOut(), {"activity_id": activity_id, "rooms": rooms})

    @http("GET", "/openapi.json")
    def openapi(self, request: Request) -> Response:
        return json_response(openapi_document())

    @http("GET", "/docs")
    def docs_page(self, request: Request) -> Response:
        """The API, readable (Swagger UI, served from the installed package: no CDN)."""
        return Response(docs.PAGE, mimetype="text/html")

    @http("GET", "/docs/<string:asset>")
    def docs_asset(self, request: Request, asset: str) -> Response:
        if asset == "openapi.json":  # Swagger UI 4 reads OpenAPI 3.0: the same document in 3.0
            return json_response(openapi_document(docs.SWAGGER_UI_OPENAPI))
        return docs.asset(asset)

    @rpc
    def contact(self, registration_id: str) -> dict | None:
        """Whom to write about a registration, with fresh links (each call mints new tokens):
        {"links": {"personal": URL, "consent": URL or None}}; None once erased."""
        return self.contacts([registration_id])[registration_id]

    @rpc
    def contacts(self, registration_ids: list) -> dict:
        """`contact` for a batch of notifications' mails, in one call and one transaction:
        {registration_id: contact with fresh links, or None once erased}."""
        return handlers_consent.contacts_with_links(
            self.db, list(registration_ids), self.consent_settings, utcnow()
        )

    # --- parental consent: the parent's page (docs/consent.md) ---------------------------------

    @property
    def consent_settings(self) -> handlers_consent.ConsentSettings:
        return handlers_consent.ConsentSettings.from_config(self.config)

    def _consent_page(
        self, token: str, answer: Answer | None, flash: str | None = None
    ) -> Response:
        """The parent's page (after recording `answer`, if any); every refusal a page too."""
        action = f"/toestemming/{token}"
        try:
            if answer is None:
                view = handlers_consent.show_consent(self.db, token, utcnow())
            else:
                settings = self.consent_settings
                view = handlers_consent.answer_consent(self.db, token, answer, settings)
        except LinkExpired as expired:
            ask = f"{action}/nieuwe-link" if self._still_pending(expired) else None
            return pages.message(expired.title, expired.detail, 410, ask_again_action=ask)
        except LinkRefused as refused:
            return pages.message(refused.title, refused.detail, refused.status)
        except ConsentNotOpen as closed:
            return pages.message(closed.title, closed.detail, closed.status, back=action)
        except Exception as exc:  # noqa: BLE001 - a page never shows a stack trace
            return self._page_failed(exc)
        return pages.page("consent.html", v=view, action=action, flash=flash)

    def _still_pending(self, expired: LinkExpired) -> bool:
        return bool(expired.registration_id) and handlers_consent.awaiting_consent(
            self.db, expired.registration_id
        )

    @staticmethod
    def _page_failed(exc: Exception) -> Response:
        log.error("page failed: %s", type(exc).__name__)  # never the token or a person
        return pages.message(
            "Er ging iets mis aan onze kant",
            "Probeer het later nog eens; er is niets veranderd.",
            500,
        )

    @page("GET", "/toestemming/<string:token>")
    def consent_page(self, request: Request, token: str) -> Response:
        return self._consent_page(token, None)

    @page("POST", "/toestemming/<string:token>/ja")
    def give_consent(self, request: Request, token: str) -> Response:
        return self._consent_page(
            token,
            Answer.GIVE,
            "Dank u wel: u hebt toestemming gegeven.",
        )

    @page("POST", "/toestemming/<string:token>/nee")
    def refuse_consent(self, request: Request, token: str) -> Response:
        return self._consent_page(
            token,
            Answer.REFUSE,
            "U hebt geen toestemming gegeven; de aanmelding vervalt.",
        )

    @page("POST", "/toestemming/<string:token>/intrekken")
    def withdraw_consent(self, request: Request, token: str) -> Response:
        return self._consent_page(
            token,
            Answer.WITHDRAW,
            "U hebt de toestemming ingetrokken.",
        )

    @page("POST", "/toestemming/<string:token>/nieuwe-link")
    def ask_consent_again(self, request: Request, token: str) -> Response:
        try:
            handlers_consent.ask_again(self.db, token, self.consent_settings)
        except LinkRefused as refused:
            return pages.message(refused.title, refused.detail, refused.status)
        except ConsentNotOpen as closed:
            return pages.message(closed.title, closed.detail, closed.status)
        except Exception as exc:  # noqa: BLE001
            return self._page_failed(exc)
        return pages.message(
            "Er komt een nieuwe link",
            "U krijgt binnen enkele minuten een e-mail met een nieuwe link.",
            200,
            tone="done",
        )

    @config_timer("CONSENT_SWEEP_SECONDS", 60)
    def sweep_consents(self) -> None:
        """Expire consents nobody answered in time; erase whom a refusal's grace has passed."""
        try:
            handlers_consent.sweep(self.db, self.consent_settings)
        except Exception:
            log.exception("consent sweep failed; it runs again at the next interval")

    # --- a participant's own sign-up ----------------------------------------------------------

    @property
    def cancel_cutoff(self) -> Any:
        from datetime import timedelta

        return timedelta(hours=float(self.config.get("PERSONAL_CANCEL_CUTOFF_HOURS", 24)))

    def _mine_with_programme(self, token: str | None) -> dict[str, Any]:
        mine = handlers_personal.mine(self.db, token, self.cancel_cutoff)
        plan = None
        if mine.activity_id:
            try:
                timeout = float(self.config.get("RPC_TIMEOUT_SECONDS", 10))
                plan = call_with_timeout(
                    self.scheduling.programmes, mine.activity_id, mine.school_id, timeout=timeout
                )
            except TimeoutError:
                plan = None  # the page shows the sign-up; the programme comes with the mail
        return handlers_personal.with_programme(mine, plan)

    def _personal_page(self, token: str, render: Any) -> Response:
        try:
            return render()
        except LinkRefused as refused:
            return pages.message(refused.title, refused.detail, refused.status)
        except TooLateToCancel as late:
            problem = problem_for(late)
            back = f"/mijn-aanmelding/{token}"
            return pages.message(problem.title, problem.detail, 409, back=back)
        except Exception as exc:  # noqa: BLE001
            return self._page_failed(exc)

    @page("GET", "/mijn-aanmelding/<string:token>")
    def personal_page(self, request: Request, token: str) -> Response:
        action = f"/mijn-aanmelding/{token}"
        return self._personal_page(
            token,
            lambda: pages.page("personal.html", v=self._mine_with_programme(token), action=action),
        )

    @page("GET", "/mijn-aanmelding/<string:token>/afmelden")
    def personal_cancel_confirm(self, request: Request, token: str) -> Response:
        action = f"/mijn-aanmelding/{token}"
        return self._personal_page(
            token,
            lambda: pages.page(
                "cancel_confirm.html",
                v=handlers_personal.mine(self.db, token, self.cancel_cutoff).view,
                action=action,
            ),
        )

    @page("POST", "/mijn-aanmelding/<string:token>/afmelden")
    def personal_cancel(self, request: Request, token: str) -> Response:
        action = f"/mijn-aanmelding/{token}"
        return self._personal_page(
            token,
            lambda: pages.page(
                "personal.html",
                v=handlers_personal.cancel_mine(self.db, token, self.cancel_cutoff),
                action=action,
                flash="Je bent afgemeld.",
            ),
        )

    @http("GET", "/my/registration")
    def my_registration(self, request: Request) -> Response:
        """A participant's own sign-up as JSON, by the personal token in X-Personal-Token."""
        token = request.headers.get(PERSONAL_TOKEN_HEADER)
        return reply(MyRegistrationOut(), self._mine_with_programme(token))

    # --- attendance --------------------------------------------------------------------------

    @http("POST", "/registrations/<string:registration_id>/attendance")
    def record_attendance(self, request: Request, registration_id: str) -> Response:
        caller = self._caller(request, Scope.RECORD_ATTENDANCE)
        present = load(AttendanceIn(), read_json(request))["present"]
        view = handlers_attendance.record_one(self.db, registration_id, present, caller)
        return reply(AttendanceOut(), view)

    @http("POST", "/activities/<string:activity_id>/attendance")
    def upload_attendance(self, request: Request, activity_id: str) -> Response:
        """The ticked room list back (CSV/XLSX): everyone on it, or nothing (a row report)."""
        caller = self._caller(request, Scope.RECORD_ATTENDANCE)
        content, _, _ = roster_file(request, MAX_BYTES)  # the same upload as a roster's
        view = handlers_attendance.record_file(self.db, activity_id, content, caller)
        return reply(AttendanceFileOut(), view)

    # --- AVG ----------------------------------------------------------------------------------

    @http("GET", "/persons/<string:person_id>/export")
    def export_person(self, request: Request, person_id: str) -> Response:
        self._caller(request, Scope.EXPORT_PERSONS)
        return reply(PersonExportOut(), handlers_personal.export_person(self.db, person_id))

    @rpc
    def school_contact(self, school_id: str, registration_ids: list | None = None) -> dict | None:
        """{school_id, name, email, pupils} for notifications' school digest (None: unknown)."""
        return handlers.school_contact(self.db, school_id, registration_ids)

    @rpc
    def identify_key(self, key_hash: str) -> dict | None:
        """Who a key is, by its SHA-256 (the key itself never travels): reporting's question."""
        return handlers.identify_key(self.db, key_hash)
