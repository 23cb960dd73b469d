"""The hand-written MIME message (Mailer.message_bytes, what is sent) is byte for byte the one
the email package builds and smtplib.send_message puts on the wire, envelope included."""

import copy
import io
import random
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.utils import format_datetime, getaddresses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lob_common.timeutil import AMSTERDAM
from notifications.adapters import smtp
from notifications.adapters.smtp import Mailer
from notifications.domain.samples import CONTACT, CONTACTS, DATA
from notifications.domain.texts import KINDS, Email, render

SENDERS = [
    "LOB regio Eem <lob@regio-eem.example>",
    "lob@localhost",
    "Projectgroep LOB Eëm <l@x.nl>",
]
ICS = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + b"X-LONG:" + b"x" * 300 + b"\r\nEND:VCALENDAR\r\n"


class FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2027, 3, 28, 0, 59, 59, tzinfo=UTC).astimezone(tz)


def sent_by_the_email_package(mailer: Mailer, email: Email, message_id: str):
    """What build() + smtplib.SMTP.send_message give: the envelope and the bytes after DATA."""
    message = mailer.build(email, message_id)
    sender = getaddresses([message["From"]])[0][1]
    recipients = [a for _, a in getaddresses([message["To"]])]
    out = io.BytesIO()
    BytesGenerator(out).flatten(copy.copy(message), linesep="\r\n")
    return out.getvalue(), sender, recipients


def emails():
    for kind in sorted(KINDS):
        template = "programme_assigned" if kind == "promoted" else kind
        yield kind, render(template, {**CONTACT, **CONTACTS.get(kind, {})}, DATA[kind])
    odd = {
        **CONTACT,
        "first_name": "Zoë-Ångström " + "heel lang " * 20,
        "activity": {**CONTACT["activity"], "title": "Één (héél) lange titel; " * 60},
    }
    yield (
        "non-ASCII, overlong subject",
        render("programme_assigned", odd, DATA["programme_changed"]),
    )
    yield "text only", Email(to="a@b.nl", subject="Hoi", text="Regel\n" + "lang " * 40 + "\n")
    yield "text and html", Email(to="a@b.nl", subject="Hoi", text="t\n", html="<p>é=</p>")
    yield (
        "text and attachment",
        Email(
            to="Sanne <a@b.nl>",
            subject='=?utf-8?q?niet_decoderen?= "quotes" (haakjes)',
            text="--===============1==\n.\n\r\nvreemd\r",
            attachments=(("afspraak.ics", "text/calendar; method=CANCEL", ICS),),
        ),
    )
    yield (
        "two attachments",
        Email(
            to="a@b.nl",
            subject="x",
            text="t",
            html="h",
            attachments=(
                ("a.ics", "text/calendar; method=REQUEST", ICS),
                ("b.bin", "application/octet-stream", bytes(range(256))),
            ),
        ),
    )


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize(
    ("what", "email"), list(emails()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_what_is_sent_is_what_the_email_package_would_send(monkeypatch, sender, what, email):
    monkeypatch.setattr(smtp, "datetime", FrozenClock)
    mailer = Mailer({"MAIL_FROM": sender})
    random.seed(what)
    expected = sent_by_the_email_package(mailer, email, "<42@lob-regio-eem>")
    random.seed(what)
    assert mailer.message_bytes(email, "<42@lob-regio-eem>") == expected


def test_what_it_cannot_write_directly_is_left_to_the_email_package():
    mailer = Mailer({})
    quoted_name = Email(
        to="a@b.nl",
        subject="x",
        text="t",
        attachments=(("mijn afspraak.ics", "text/calendar", b"x"),),
    )
    assert mailer.message_bytes(quoted_name, "<1@x>") is None
    assert (
        mailer.message_bytes(Email(to="zoë@voorbeeld.nl", subject="x", text="t"), "<1@x>") is None
    )


# The headers of each mail written without the policy's parse when their value is plain: the
# same line (and parsed value) as the policy gives, for any value the shortcut takes.
@settings(max_examples=300, deadline=None)
@given(st.from_regex(smtp._PLAIN["To"], fullmatch=True))
def test_a_plain_address_is_written_as_the_policy_writes_it(address):
    line, parsed = smtp._header("To", address)
    assert smtp._unique_header("To", address) == (line, str(parsed))


@settings(max_examples=300, deadline=None)
@given(st.from_regex(smtp._PLAIN["Message-ID"], fullmatch=True))
def test_a_message_id_is_written_as_the_policy_writes_it(message_id):
    assert (
        smtp._unique_header("Message-ID", message_id)[0]
        == smtp._header("Message-ID", message_id)[0]
    )


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)))
def test_a_date_is_written_as_the_policy_writes_it(moment):
    local = moment.replace(tzinfo=UTC).astimezone(AMSTERDAM)
    assert smtp._date_header(local) == smtp._header("Date", format_datetime(local))[0]


@pytest.mark.parametrize(
    "address",
    ["Mirthe <m@x.nl>", "a..b@x.nl", ".a@x.nl", "é@x.nl", "a@x.nl, b@y.nl", "a@[127.0.0.1]"],
)
def test_any_other_address_goes_through_the_policy(address):
    line, parsed = smtp._header("To", address)
    assert smtp._unique_header("To", address) == (line, parsed)
