"""The document check used by the API tests can fail: it catches each kind of drift."""

import json

import pytest
import requests

from lob_testing.openapi import OpenApiCheck
from registration.openapi import openapi_document

GOOD = {
    "registration_id": "r1",
    "activity_id": "a1",
    "person_id": "p1",
    "school_id": None,
    "status": "signed_up",
    "consent": "pending",
    "preferences": {},
    "created_at": "2026-11-20T08:45:00+01:00",
}


def _response(status, body, media_type="application/json"):
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = media_type
    return response


def test_a_documented_answer_passes():
    check = OpenApiCheck(openapi_document())
    check(_response(201, GOOD), "POST", "/registrations")
    assert ("POST", "/registrations") not in check.unchecked()


@pytest.mark.parametrize(
    ("status", "body", "media_type"),
    [
        (201, {**GOOD, "created_at": "1204-06-02T10:19:32+00:19:32"}, "application/json"),
        (201, {**GOOD, "status": "maybe"}, "application/json"),
        (201, {k: v for k, v in GOOD.items() if k != "consent"}, "application/json"),
        (201, {**GOOD, "undocumented": 1}, "application/json"),
        (201, GOOD, "text/html"),
        (418, GOOD, "application/json"),
    ],
)
def test_drift_is_caught(status, body, media_type):
    with pytest.raises(AssertionError):
        OpenApiCheck(openapi_document())(
            _response(status, body, media_type), "POST", "/registrations"
        )
