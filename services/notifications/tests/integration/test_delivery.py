"""Notifications with the real registration service (RPC for the contact) and an SMTP sink."""

from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from nameko.testing.services import entrypoint_hook
from sqlalchemy import select, update

from lob_common.db import DatabaseHandle, make_engine
from lob_testing import (
    OPERATOR_KEY,
    base_url,
    free_port,
    mail_sink,
    poll,
    publish_event,
    read_mail,
    sample,
    service_test_config,
)
from notifications.adapters.tables import Base, Message
from notifications.domain.calendar import calendar_uid
from notifications.service import NotificationsService
from registration.adapters.tables import Base as RegistrationBase
from registration.demo import seed
from registration.service import RegistrationService

pytestmark = pytest.mark.integration
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SOON = datetime.now(UTC) + timedelta(days=30)


class Setup:
    def __init__(self, registration_url, db, mail, notifications):
        self.registration_url = registration_url
        self.db = db
        self.mail = mail
        self.notifications = notifications

    def sign_up(self, email="sanne@example.nl", **extra):
        response = requests.post(
            f"{self.registration_url}/registrations",
            headers=OPERATOR,
            json={
                **extra,
                "activity_id": "netwerk",  # a network meeting: for professionals (a mentor)
                "role": "professional",
                "first_name": "Sanne",
                "last_name": "de Vries",
                "email": email,
                "date_of_birth": "2008-01-02",
                "school_id": "farel-college",
            },
        )
        assert response.status_code == 201, response.text
        return response.json()

    def messages(self):
        with self.db() as uow:
            return uow.session.scalars(select(Message)).all()

    def sent_events(self):
        outbox = self.db.metadata.tables["outbox"]
        with self.db.engine.connect() as connection:
            return connection.execute(select(outbox.c.event_type)).scalars().all()


@pytest.fixture
def setup(broker, database_url, tmp_path, container_factory):
    registration_config = service_test_config(
        "registration", broker, f"sqlite:///{tmp_path}/registration.db"
    )
    registration = container_factory(RegistrationService, registration_config)
    registration.start()
    seed(
        DatabaseHandle(make_engine(registration_config["DATABASE_URL"]), RegistrationBase.metadata),
        date.today(),
    )
    url = base_url(registration_config)
    requests.post(
        f"{url}/activities",
        headers=OPERATOR,
        json={
            "id": "netwerk",
            "kind": "network_meeting",
            "title": "Lerend Netwerk",
            "starts_at": SOON.isoformat(),
            "ends_at": (SOON + timedelta(hours=2)).isoformat(),
            "location": "Amersfoort",
        },
    ).raise_for_status()
    smtp_port = free_port()
    config = service_test_config(
        "notifications",
        broker,
        database_url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp_port,
        MAIL_MAX_ATTEMPTS=3,
    )
    notifications = container_factory(NotificationsService, config)
    notifications.start()
    db = DatabaseHandle(make_engine(database_url), Base.metadata)
    yield Setup(url, db, tmp_path / "mail", notifications), smtp_port
    db.engine.dispose()


def test_a_sign_up_is_confirmed_by_one_dutch_email_with_an_invitation(setup):
    s, smtp_port = setup
    with mail_sink(s.mail, smtp_port):
        registration = s.sign_up()
        [mail] = poll(lambda: read_mail(s.mail), what="the email")

    assert mail["To"] == "sanne@example.nl"
    assert mail["Subject"].startswith("Aanmelding ontvangen: Lerend Netwerk (")
    assert mail.get_body(("html",)) is not None
    [invite] = list(mail.iter_attachments())
    ics = invite.get_content()
    ics = ics.decode() if isinstance(ics, bytes) else ics
    uid = calendar_uid(registration["person_id"], "netwerk")
    assert f"UID:{uid}" in ics and "METHOD:REQUEST" in ics
    [message] = s.messages()
    assert (message.status, message.attempts) == ("sent", 1)
    assert s.sent_events() == ["notification_sent"]


def test_while_smtp_is_down_the_message_waits_and_goes_out_later(setup):
    s, smtp_port = setup
    s.sign_up()
    [message] = poll(
        lambda: [m for m in s.messages() if (m.status, m.attempts) == ("pending", 1)],
        what="the first failed attempt",
    )
    assert message.status == "pending"
    assert "Connection" in message.last_error or "refused" in message.last_error

    with mail_sink(s.mail, smtp_port):
        with s.db() as uow:  # the retry time has come
            uow.session.execute(update(Message).values(next_attempt_at=datetime.now(UTC)))
            uow.commit()
        with entrypoint_hook(s.notifications, "deliver_due") as deliver_due:
            deliver_due()
        poll(lambda: read_mail(s.mail), what="the email after SMTP came back")

    assert [(m.status, m.attempts) for m in s.messages()] == [("sent", 2)]


def test_after_the_last_attempt_the_message_is_failed_and_announced(setup):
    s, _ = setup
    s.sign_up()
    poll(
        lambda: [m for m in s.messages() if (m.status, m.attempts) == ("pending", 1)],
        what="the first attempt",
    )
    for _ in range(2):
        with s.db() as uow:
            uow.session.execute(update(Message).values(next_attempt_at=datetime.now(UTC)))
            uow.commit()
        with entrypoint_hook(s.notifications, "deliver_due") as deliver_due:
            deliver_due()

    [message] = s.messages()
    assert (message.status, message.attempts) == ("failed", 3)
    assert s.sent_events() == ["notification_failed"]


def test_erasure_forgets_every_message_about_the_person(setup, broker):
    s, smtp_port = setup
    with mail_sink(s.mail, smtp_port):
        registration = s.sign_up()
        poll(lambda: [m for m in s.messages() if m.status == "sent"], what="the sent email")

    publish_event(
        broker, "person_erased", sample("person_erased", person_id=registration["person_id"])
    )

    poll(lambda: s.messages() == [], what="the messages about the person to be gone")
    from notifications.adapters.tables import DeliveryCount, SignUp

    with s.db() as uow:  # only anonymous counts per kind and status stay
        counts = {
            (c.template, c.status): c.count for c in uow.session.scalars(select(DeliveryCount))
        }
        assert uow.session.scalars(select(SignUp)).all() == []
    assert counts == {("sign_up_confirmation", "sent"): 1}


def test_an_erasure_that_drops_unsent_mail_says_so(setup, broker, caplog):
    """A mail still waiting (here: no SMTP server) when its person is erased never goes out:
    a warning without personal data and a metric say so, instead of silence."""
    from prometheus_client import REGISTRY

    def erased_unsent():
        labels = {"template": "sign_up_confirmation", "status": "erased_unsent"}
        return REGISTRY.get_sample_value("lob_notifications_total", labels) or 0

    s, _ = setup
    before = erased_unsent()
    registration = s.sign_up()
    poll(lambda: [m for m in s.messages() if m.status == "pending"], what="the waiting mail")

    with caplog.at_level("WARNING", logger="notifications.handlers"):
        publish_event(
            broker, "person_erased", sample("person_erased", person_id=registration["person_id"])
        )
        poll(lambda: s.messages() == [], what="the messages about the person to be gone")
        poll(lambda: erased_unsent() == before + 1, what="the metric of mail erased unsent")

    [warning] = [r.getMessage() for r in caplog.records if "erased before" in r.getMessage()]
    assert "1 message(s)" in warning and "sign_up_confirmation" in warning
    assert registration["person_id"] not in warning and "@" not in warning


def per_recipient_and_subject(folder):
    from collections import Counter

    return Counter((m["To"], m["Subject"].split(":")[0]) for m in read_mail(folder))


def duplicates_seen():
    from prometheus_client import REGISTRY

    labels = {
        "event_type": "programme_assigned",
        "handler": "notifications.handle_programme_assigned",
        "outcome": "duplicate",
    }
    return REGISTRY.get_sample_value("lob_events_consumed_total", labels) or 0


def test_a_redelivered_event_sends_one_mail(setup, broker):
    s, smtp_port = setup
    before = duplicates_seen()
    with mail_sink(s.mail, smtp_port):
        registration = s.sign_up()
        poll(lambda: read_mail(s.mail), what="the confirmation")
        payload = sample(
            "programme_assigned",
            activity_id="netwerk",
            registration_id=registration["registration_id"],
            person_id=registration["person_id"],
        )
        event = publish_event(broker, "programme_assigned", payload)
        publish_event(broker, "programme_assigned", payload, event=event)  # the same event again
        poll(lambda: len(read_mail(s.mail)) == 2, what="the programme mail")
        poll(
            lambda: duplicates_seen() > before,
            what="the duplicate to be seen",
        )

    assert per_recipient_and_subject(s.mail) == {
        ("sanne@example.nl", "Aanmelding ontvangen"): 1,
        ("sanne@example.nl", "Je programma"): 1,
    }
    assert len({m["Message-ID"] for m in read_mail(s.mail)}) == 2


def test_a_sign_up_cancelled_before_its_mail_went_out_gets_only_the_cancellation(setup):
    s, smtp_port = setup
    registration = s.sign_up()  # the SMTP server is away: the confirmation waits
    poll(
        lambda: [m for m in s.messages() if (m.status, m.attempts) == ("pending", 1)],
        what="the first failed attempt",
    )
    requests.delete(
        f"{s.registration_url}/registrations/{registration['registration_id']}", headers=OPERATOR
    ).raise_for_status()
    poll(
        lambda: (
            {m.template: m.status for m in s.messages()}.get("sign_up_confirmation") == "cancelled"
        ),
        what="the queued confirmation to be called off",
    )

    with mail_sink(s.mail, smtp_port):
        with s.db() as uow:
            uow.session.execute(update(Message).values(next_attempt_at=datetime.now(UTC)))
            uow.commit()
        with entrypoint_hook(s.notifications, "deliver_due") as deliver_due:
            deliver_due()
        poll(lambda: read_mail(s.mail), what="the cancellation mail")

    assert per_recipient_and_subject(s.mail) == {("sanne@example.nl", "Afmelding bevestigd"): 1}
    [mail] = read_mail(s.mail)
    [invite] = list(mail.iter_attachments())
    ics = invite.get_content()
    ics = ics.decode() if isinstance(ics, bytes) else ics
    assert "METHOD:CANCEL" in ics
    assert {m.template: m.status for m in s.messages()} == {
        "sign_up_confirmation": "cancelled",
        "sign_up_cancelled": "sent",
    }


def test_the_parent_is_asked_and_told_the_outcome_and_the_pupil_hears_both(setup, broker):
    s, smtp_port = setup
    with mail_sink(s.mail, smtp_port):
        registration = s.sign_up(parent_email="ouder@example.nl")
        ids = {
            "registration_id": registration["registration_id"],
            "person_id": registration["person_id"],
            "activity_id": "netwerk",
        }
        event = publish_event(broker, "consent_requested", sample("consent_requested", **ids))
        publish_event(broker, "consent_requested", {}, event=event)  # redelivered
        poll(lambda: len(read_mail(s.mail)) == 3, what="the consent request mails")
        publish_event(broker, "consent_refused", sample("consent_refused", **ids))
        poll(lambda: len(read_mail(s.mail)) == 5, what="the outcome mails")

    assert per_recipient_and_subject(s.mail) == {
        ("sanne@example.nl", "Aanmelding ontvangen"): 1,
        ("ouder@example.nl", "Toestemming gevraagd voor Sanne"): 1,
        ("sanne@example.nl", "We vragen toestemming aan je ouder"): 1,
        ("ouder@example.nl", "Geen toestemming"): 1,
        ("sanne@example.nl", "Je aanmelding is vervallen"): 1,
    }
    [request] = read_mail(s.mail, to="ouder@example.nl")[:1]
    assert "24 december 2030" in request.get_body(("plain",)).get_content()


def test_an_activity_cancelled_by_the_region_tells_every_participant_once(setup):
    s, smtp_port = setup
    with mail_sink(s.mail, smtp_port):
        s.sign_up("sanne@example.nl")
        s.sign_up("joris@example.nl")
        poll(lambda: len(read_mail(s.mail)) == 2, what="the confirmations")
        requests.delete(
            f"{s.registration_url}/activities/netwerk", headers=OPERATOR
        ).raise_for_status()
        poll(lambda: len(read_mail(s.mail)) == 4, what="the cancellation mails")

    counts = per_recipient_and_subject(s.mail)
    assert counts[("sanne@example.nl", "Gaat niet door")] == 1
    assert counts[("joris@example.nl", "Gaat niet door")] == 1
    for mail in read_mail(s.mail):
        if mail["Subject"].startswith("Gaat niet door"):
            [invite] = list(mail.iter_attachments())
            ics = invite.get_content()
            assert "METHOD:CANCEL" in (ics.decode() if isinstance(ics, bytes) else ics)


def test_a_reminder_goes_once_per_person_and_activity(setup):
    from notifications import handlers

    s, smtp_port = setup
    with mail_sink(s.mail, smtp_port):
        s.sign_up()
        poll(lambda: read_mail(s.mail), what="the confirmation")
        now = datetime.now(UTC)
        assert handlers.queue_reminders(s.db, now, timedelta(days=2)) == []  # 30 days ahead
        assert len(handlers.queue_reminders(s.db, now, timedelta(days=31))) == 1
        assert handlers.queue_reminders(s.db, now, timedelta(days=31)) == []  # once
        with entrypoint_hook(s.notifications, "deliver_due") as deliver_due:
            deliver_due()
        poll(lambda: len(read_mail(s.mail)) == 2, what="the reminder")

    assert per_recipient_and_subject(s.mail) == {
        ("sanne@example.nl", "Aanmelding ontvangen"): 1,
        ("sanne@example.nl", "Herinnering"): 1,
    }


def test_the_school_gets_one_digest_of_its_pupils_and_then_what_changed(setup, broker):
    from notifications.adapters.tables import SchoolDigest

    s, smtp_port = setup
    decaan = "decaan@farel-college.example.nl"

    def digests_due_now():
        with s.db() as uow:
            uow.session.execute(
                update(SchoolDigest)
                .where(SchoolDigest.due_at.is_not(None))
                .values(due_at=datetime.now(UTC))
            )
            uow.commit()
        with entrypoint_hook(s.notifications, "send_digests") as send_digests:
            send_digests()

    with mail_sink(s.mail, smtp_port):
        sanne = s.sign_up("sanne@example.nl")
        joris = s.sign_up("joris@example.nl")
        poll(lambda: len(read_mail(s.mail)) == 2, what="the confirmations")
        for who, title in ((sanne, "Zorg"), (joris, "ICT")):
            publish_event(
                broker,
                "programme_assigned",
                sample(
                    "programme_assigned",
                    activity_id="netwerk",
                    registration_id=who["registration_id"],
                    person_id=who["person_id"],
                    sessions=[{"round": 1, "session_id": title, "title": title}],
                ),
            )
        poll(lambda: len(read_mail(s.mail)) == 4, what="the programmes")
        publish_event(
            broker, "schedule_published", sample("schedule_published", activity_id="netwerk")
        )
        poll(lambda: [d for d in _digests(s.db) if d.due_at is not None], what="a digest to be due")
        digests_due_now()
        [first] = poll(lambda: read_mail(s.mail, to=decaan), what="the digest")

        publish_event(
            broker,
            "programme_changed",
            sample(
                "programme_changed",
                activity_id="netwerk",
                registration_id=joris["registration_id"],
                person_id=joris["person_id"],
                sessions=[{"round": 1, "session_id": "Techniek", "title": "Techniek"}],
            ),
        )
        poll(lambda: len(read_mail(s.mail)) == 6, what="joris's changed programme")
        digests_due_now()
        poll(lambda: len(read_mail(s.mail, to=decaan)) == 2, what="the second digest")
        digests_due_now()  # nothing new: no third digest

    first_text = first.get_body(("plain",)).get_content()
    assert first["Subject"].startswith("Leerlingen van Farel College: Lerend Netwerk")
    assert "- Sanne de Vries: ronde 1: Zorg" in first_text
    assert "- Sanne de Vries: ronde 1: ICT" in first_text  # both sign-ups are named Sanne
    second = read_mail(s.mail, to=decaan)[1].get_body(("plain",)).get_content()
    assert "ronde 1: Techniek; workshop w1 [gewijzigd, was: ronde 1: ICT]" in second
    assert "ronde 1: Zorg\n" in second.replace("\r\n", "\n")  # the complete list again
    assert len(read_mail(s.mail, to=decaan)) == 2


def _digests(db):
    from notifications.adapters.tables import SchoolDigest

    with db() as uow:
        return uow.session.scalars(select(SchoolDigest)).all()
