"""`lob mail`: preview every kind as the exact MIME message, list and resend failed deliveries."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import pytest
from click.testing import CliRunner

from lob_cli.main import lob
from lob_cli.services import SERVICES, open_database
from notifications.adapters.tables import Message
from notifications.domain.texts import KINDS


@pytest.fixture
def databases(tmp_path, monkeypatch):
    for name in SERVICES:
        monkeypatch.setenv(f"{name.upper()}_DATABASE_URL", f"sqlite:///{tmp_path}/{name}.db")
    return tmp_path


def test_preview_lists_the_kinds():
    result = CliRunner().invoke(lob, ["mail", "preview", "--list"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == list(KINDS)


def test_preview_writes_the_complete_message(tmp_path):
    target = tmp_path / "programme.eml"
    result = CliRunner().invoke(lob, ["mail", "preview", "programme_assigned", "-o", str(target)])
    assert result.exit_code == 0, result.output
    mail = BytesParser(policy=policy.default).parsebytes(target.read_bytes())
    assert mail["Subject"].startswith("Je programma: ")
    assert "Ronde 1" in mail.get_body(("plain",)).get_content()
    assert "<li>Ronde 1" in mail.get_body(("html",)).get_content()
    [invite] = list(mail.iter_attachments())
    assert invite.get_content_type() == "text/calendar"


def test_preview_of_an_unknown_kind_names_the_known_ones():
    result = CliRunner().invoke(lob, ["mail", "preview", "verjaardag"])
    assert result.exit_code != 0
    assert "sign_up_confirmation" in result.output


def _failed(db, message_id, error):
    now = datetime.now(UTC)
    with db() as uow:
        uow.session.add(
            Message(
                id=message_id,
                source_event_id=f"e-{message_id}",
                template="waitlisted",
                registration_id="r1",
                person_id="p1",
                data={},
                status="failed",
                attempts=8,
                next_attempt_at=now,
                last_error=error,
                created_at=now,
                updated_at=now,
            )
        )
        uow.commit()


def test_failed_lists_without_addresses_and_resend_queues_again(databases):
    runner = CliRunner()
    assert runner.invoke(lob, ["mail", "failed"]).output == "no failed deliveries\n"
    db = open_database("notifications")
    _failed(db, "m1", "recipient refused: 550 <sanne@example.nl>: no such user")
    _failed(db, "m2", "recipient refused: 550 5.1.1")

    listed = runner.invoke(lob, ["mail", "failed"])
    assert "m1" in listed.output and "waitlisted" in listed.output
    assert "sanne@example.nl" not in listed.output

    assert runner.invoke(lob, ["mail", "resend", "m1"]).output == "1 message(s) queued again\n"
    assert runner.invoke(lob, ["mail", "resend", "--all"]).output == "1 message(s) queued again\n"
    with db() as uow:
        assert {m.status for m in uow.session.query(Message)} == {"pending"}
    assert runner.invoke(lob, ["mail", "resend"]).exit_code != 0
