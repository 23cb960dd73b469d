"""The event contracts: every event round-trips; malformed ones are refused with a reason."""

import copy

import pytest

from lob_common.contracts import (
    CONTRACTS,
    SUBSCRIPTIONS,
    MalformedEvent,
    dump_event,
    new_event,
    parse_event,
    payload_json,
)
from lob_testing import SAMPLES


def test_every_contract_has_a_sample():
    assert set(SAMPLES) == set(CONTRACTS)


@pytest.mark.parametrize("event_type", sorted(CONTRACTS))
def test_round_trip(event_type):
    event = new_event(event_type, SAMPLES[event_type], correlation_id="c-1")
    body = dump_event(event)
    again = parse_event(body, event_type)
    assert again.event_id == event.event_id
    assert again.producer == CONTRACTS[event_type].producer
    assert again.correlation_id == "c-1"
    assert again.payload == event.payload
    assert payload_json(again) == payload_json(event)


@pytest.mark.parametrize("event_type", sorted(CONTRACTS))
def test_missing_required_field_is_malformed(event_type):
    required = [n for n, f in CONTRACTS[event_type].schema().fields.items() if f.required]
    payload = dict(SAMPLES[event_type])
    del payload[required[0]]
    with pytest.raises(MalformedEvent, match=required[0]):
        new_event(event_type, payload)


def _body(**changes):
    body = dump_event(new_event("signed_up", SAMPLES["signed_up"]))
    body.update(changes)
    return body


def test_wrong_type_in_payload_names_the_field():
    body = _body()
    body["payload"] = dict(body["payload"], school_year="drie")
    with pytest.raises(MalformedEvent, match="school_year"):
        parse_event(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not a dict", "not a JSON object"),
        ({"event_type": "signed_up"}, "event_id"),
        ({**_body(), "event_type": "made_up"}, "unknown event type"),
        (_body(schema_version="2.0"), "major version"),
        (_body(event_id="not-a-uuid"), "event_id"),
    ],
)
def test_malformed_envelopes_are_refused_with_a_reason(body, reason):
    with pytest.raises(MalformedEvent, match=reason):
        parse_event(body)


def test_expected_type_is_enforced():
    with pytest.raises(MalformedEvent, match="expected sign_up_cancelled"):
        parse_event(_body(), "sign_up_cancelled")


def test_newer_minor_version_with_unknown_fields_is_accepted():
    body = _body(schema_version="1.7")
    body["payload"] = dict(copy.deepcopy(body["payload"]), shoe_size=42)
    event = parse_event(body)
    assert event.payload["registration_id"] == "r1"
    assert "shoe_size" not in event.payload


def test_every_subscription_is_to_a_known_event_of_its_producer():
    for (producer, event_type), handlers in SUBSCRIPTIONS.items():
        assert CONTRACTS[event_type].producer == producer
        for handler in handlers:
            _service, method = handler.split(".")
            assert method == f"handle_{event_type}", handler
