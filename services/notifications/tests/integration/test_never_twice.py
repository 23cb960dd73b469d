"""Never twice, never lost: real PostgreSQL (behind a switchable TCP proxy, so the database can
really go away at an exact moment), a real SMTP sink counting per recipient and Message-ID."""

import logging
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta

import eventlet
import pytest

from lob_common.db import DatabaseHandle, make_engine, migrate, utcnow
from lob_testing import TcpProxy, free_port, mail_sink, poll, port_open, read_mail
from notifications import handlers
from notifications.adapters.smtp import Mailer
from notifications.adapters.tables import Base, Message, SignUp
from notifications.service import MIGRATIONS

pytestmark = pytest.mark.integration

ADDRESS = "sanne.devries@example.nl"
CONTACT = {
    "registration_id": "r1",
    "person_id": "p1",
    "first_name": "Sanne",
    "email": ADDRESS,
    "role": "pupil",
    "consent": "not_required",
    "activity": {
        "id": "a1",
        "title": "Lerend Netwerk",
        "kind": "network_meeting",
        "starts_at": "2030-12-10T13:00:00+00:00",
        "ends_at": "2030-12-10T15:00:00+00:00",
        "location": "Amersfoort",
    },
}


def contacts(registration_id):
    return {**CONTACT, "registration_id": registration_id}


def per_recipient_and_id(folder):
    return Counter((m["To"], m["Message-ID"]) for m in read_mail(folder))


@pytest.fixture(autouse=True)
def fresh_process_memory():
    """Each test is a fresh process as far as 'the database was just away' goes."""
    handlers._last_db_trouble[0] = float("-inf")
    yield
    handlers._last_db_trouble[0] = float("-inf")


@pytest.fixture
def database(postgres_url):
    engine = make_engine(postgres_url)
    migrate(engine, MIGRATIONS)
    direct = DatabaseHandle(engine, Base.metadata)
    proxy = TcpProxy(5432)
    proxy.open()
    proxied_engine = make_engine(postgres_url.replace(":5432/", f":{proxy.port}/", 1))
    proxied = DatabaseHandle(proxied_engine, Base.metadata)
    yield direct, proxied, proxy
    proxy.close()
    proxied_engine.dispose()
    engine.dispose()


def add_message(db, message_id="m1", template="sign_up_confirmation", registration_id="r1"):
    now = utcnow()
    with db() as uow:
        uow.session.add(
            Message(
                id=message_id,
                source_event_id=f"e-{message_id}",
                template=template,
                registration_id=registration_id,
                person_id="p1",
                activity_id="a1",
                data={},
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        uow.commit()


def message(db, message_id="m1"):
    with db() as uow:
        return uow.session.get(Message, message_id)


def outbox_types(db):
    outbox = Base.metadata.tables["outbox"]
    with db.engine.connect() as connection:
        return (
            connection.execute(outbox.select().with_only_columns(outbox.c.event_type))
            .scalars()
            .all()
        )


def test_a_database_outage_right_after_sending_records_sent_when_it_is_back_and_never_resends(
    database, tmp_path, caplog
):
    direct, proxied, proxy = database
    folder, port = tmp_path / "mail", free_port()
    add_message(direct)
    policy = handlers.DeliveryPolicy(max_attempts=3, lease=timedelta(seconds=2))
    mailer = Mailer({"SMTP_PORT": port})

    def send_then_lose_the_database(email, message_id):
        mailer.send(email, message_id)
        proxy.cut()  # the database goes away the moment the server accepted the mail

    with caplog.at_level(logging.INFO), mail_sink(folder, port):
        delivery = eventlet.spawn(
            handlers.deliver, proxied, "m1", contacts, send_then_lose_the_database, policy
        )
        poll(lambda: "waits for the database" in caplog.text, what="the recording to wait")
        # Meanwhile the lease runs out; another process's timer (which saw the database fail
        # too) does not take the message over, so it is not sent a second time.
        poll(lambda: message(direct).lease_until < datetime.now(UTC), what="the lease to expire")
        handlers.note_db_trouble()
        assert handlers.deliver_due(direct, contacts, mailer.send, policy) == {}

        proxy.open()  # the database is back
        assert delivery.wait() == "sent"
        handlers._last_db_trouble[0] = float("-inf")  # long after: the timer may take over
        assert handlers.deliver_due(direct, contacts, mailer.send, policy) == {}
        mails = poll(lambda: per_recipient_and_id(folder), what="the mail")

    assert mails == Counter({(ADDRESS, "<m1@lob-regio-eem>"): 1})
    sent = message(direct)
    assert (sent.status, sent.attempts, sent.claim_token) == ("sent", 1, None)
    assert outbox_types(direct) == ["notification_sent"]
    assert "done now that the database is back" in caplog.text
    assert ADDRESS not in caplog.text and "Sanne" not in caplog.text


def test_a_message_claimed_by_a_process_that_died_is_sent_by_another_and_says_why(
    database, tmp_path, caplog
):
    direct, _, _ = database
    folder, port = tmp_path / "mail", free_port()
    add_message(direct)
    policy = handlers.DeliveryPolicy(max_attempts=3, lease=timedelta(seconds=1))
    # A process claims the message and dies before sending (kill -9): nothing records an outcome.
    assert handlers._claim(direct, "m1", policy.lease) is not None
    assert handlers.observe_sending(direct)[0] == 1

    with caplog.at_level(logging.INFO), mail_sink(folder, port):
        poll(
            lambda: handlers.due_messages(direct, utcnow(), policy) == ["m1"],
            what="the dead claim to expire",
        )
        count, age = handlers.observe_sending(direct)
        assert count == 1 and age >= 1
        outcome = handlers.deliver_due(direct, contacts, Mailer({"SMTP_PORT": port}).send, policy)
        mails = poll(lambda: per_recipient_and_id(folder), what="the mail")

    assert outcome == {"sent": 1}
    assert mails == Counter({(ADDRESS, "<m1@lob-regio-eem>"): 1})
    assert "claim expired" in caplog.text and "taking it over" in caplog.text
    assert (message(direct).status, message(direct).attempts) == ("sent", 2)
    assert handlers.observe_sending(direct) == (0, 0.0)


def test_the_lease_of_a_slow_send_is_kept_alive_so_nobody_takes_it_over(database, tmp_path):
    direct, _, _ = database
    folder, port = tmp_path / "mail", free_port()
    add_message(direct)
    policy = handlers.DeliveryPolicy(max_attempts=3, lease=timedelta(seconds=1))
    mailer = Mailer({"SMTP_PORT": port})
    outcomes = []

    def slow_send(email, message_id):
        # While this claimant is busy (a slow SMTP server), the timer of another process runs
        # after the original lease would have run out: the heartbeat has moved it on.
        claimed_until = message(direct).claimed_at + policy.lease
        poll(lambda: datetime.now(UTC) > claimed_until + timedelta(seconds=0.5), what="time")
        outcomes.append(handlers.deliver_due(direct, contacts, mailer.send, policy))
        mailer.send(email, message_id)

    with mail_sink(folder, port):
        assert handlers.deliver(direct, "m1", contacts, slow_send, policy) == "sent"
        mails = poll(lambda: per_recipient_and_id(folder), what="the mail")

    assert outcomes == [{}]
    assert mails == Counter({(ADDRESS, "<m1@lob-regio-eem>"): 1})


def all_of(folder, count):
    mails = per_recipient_and_id(folder)
    return mails if sum(mails.values()) >= count else None


def test_a_claim_of_a_batch_that_another_process_took_over_is_sent_and_recorded_once(
    database, tmp_path, caplog
):
    direct, proxied, proxy = database
    folder, port = tmp_path / "mail", free_port()
    for n in (1, 2, 3):
        add_message(direct, f"m{n}", registration_id=f"r{n}")
    policy = handlers.DeliveryPolicy(max_attempts=3, lease=timedelta(seconds=1))
    mailer, other_mailer = Mailer({"SMTP_PORT": port}), Mailer({"SMTP_PORT": port})
    other_process = []

    def send(email, message_id):
        if message_id == "<m1@lob-regio-eem>":
            # This process loses the database while it sends m1: its heartbeat cannot move the
            # leases on, and another process (which saw no trouble) takes m2 over and sends it.
            proxy.cut()
            poll(
                lambda: message(direct, "m2").lease_until < datetime.now(UTC),
                what="the lease to run out",
            )
            handlers._last_db_trouble[0] = float("-inf")
            other_process.append(
                handlers.deliver_due(direct, contacts, other_mailer.send, policy, ids=["m2"])
            )
            proxy.open()
        mailer.send(email, message_id)

    with caplog.at_level(logging.INFO), mail_sink(folder, port):
        outcomes = handlers.deliver_batch(proxied, ["m1", "m2", "m3"], contacts, send, policy)
        mails = poll(lambda: all_of(folder, 3), what="three mails")

    assert outcomes == {"m1": "sent", "m2": "skipped", "m3": "sent"}
    assert other_process == [{"sent": 1}]
    assert mails == Counter({(ADDRESS, f"<m{n}@lob-regio-eem>"): 1 for n in (1, 2, 3)})
    assert [
        (message(direct, f"m{n}").status, message(direct, f"m{n}").attempts) for n in (1, 2, 3)
    ] == [
        ("sent", 1),
        ("sent", 2),
        ("sent", 1),
    ]
    assert outbox_types(direct) == ["notification_sent"] * 3
    assert "taken over by another process" in caplog.text


def test_a_sign_up_cancelled_while_its_batch_is_under_way_gets_no_mail(database, tmp_path):
    direct, _, _ = database
    folder, port = tmp_path / "mail", free_port()
    now = utcnow()
    with direct() as uow:
        for n in (1, 2):
            uow.session.add(
                SignUp(
                    registration_id=f"r{n}",
                    person_id="p1",
                    activity_id="a1",
                    status="active",
                    updated_at=now,
                )
            )
        uow.commit()
    for n in (1, 2):
        add_message(direct, f"m{n}", registration_id=f"r{n}")
    policy = handlers.DeliveryPolicy(max_attempts=3)
    mailer = Mailer({"SMTP_PORT": port})

    def send(email, message_id):
        mailer.send(email, message_id)
        if message_id == "<m1@lob-regio-eem>":  # meanwhile the second sign-up is cancelled
            with direct() as uow:
                uow.session.get(SignUp, "r2").status = "cancelled"
                uow.commit()
            later = datetime.now(UTC) + timedelta(seconds=handlers.RECHECK_AFTER)
            poll(lambda: datetime.now(UTC) > later, what="time")

    with mail_sink(folder, port):
        outcomes = handlers.deliver_batch(direct, ["m1", "m2"], contacts, send, policy)
        mails = poll(lambda: per_recipient_and_id(folder), what="the mail")

    assert outcomes == {"m1": "sent", "m2": "cancelled"}
    assert mails == Counter({(ADDRESS, "<m1@lob-regio-eem>"): 1})
    assert message(direct, "m2").status == "cancelled"
    assert outbox_types(direct) == ["notification_sent"]


SINK = textwrap.dedent(
    """
    import sys, time
    from aiosmtpd.controller import Controller

    class Refuse:
        async def handle_RCPT(self, server, session, envelope, address, options):
            return sys.argv[2] + " <" + address + ">: mailbox unavailable"

    controller = Controller(Refuse(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    while True:
        time.sleep(1)
    """
)


@pytest.fixture
def refusing_smtp(tmp_path):
    processes = []

    def start(reply):
        port = free_port()
        script = tmp_path / "refuse.py"
        script.write_text(SINK)
        processes.append(subprocess.Popen([sys.executable, str(script), str(port), reply]))
        poll(lambda: port_open(port), what="the refusing SMTP server")
        return port

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def test_a_5xx_refusal_fails_at_once_and_names_no_address(database, refusing_smtp, caplog):
    direct, _, _ = database
    add_message(direct)
    port = refusing_smtp("550 5.1.1")
    policy = handlers.DeliveryPolicy(max_attempts=5)

    with caplog.at_level(logging.INFO):
        outcome = handlers.deliver(direct, "m1", contacts, Mailer({"SMTP_PORT": port}).send, policy)

    failed = message(direct)
    assert outcome == "failed" and (failed.status, failed.attempts) == ("failed", 1)
    assert "550" in failed.last_error
    assert ADDRESS not in failed.last_error and ADDRESS not in caplog.text
    assert outbox_types(direct) == ["notification_failed"]


def test_a_4xx_refusal_is_tried_again_later_and_names_no_address(database, refusing_smtp, caplog):
    direct, _, _ = database
    add_message(direct)
    port = refusing_smtp("451 4.3.0")
    policy = handlers.DeliveryPolicy(max_attempts=5)

    with caplog.at_level(logging.INFO):
        outcome = handlers.deliver(direct, "m1", contacts, Mailer({"SMTP_PORT": port}).send, policy)

    waiting = message(direct)
    assert outcome == "postponed" and waiting.status == "pending"
    assert waiting.next_attempt_at > datetime.now(UTC) + timedelta(seconds=30)
    assert "451" in waiting.last_error
    assert ADDRESS not in waiting.last_error and ADDRESS not in caplog.text
    assert outbox_types(direct) == []


def test_a_failed_contact_lookup_is_tried_again_within_seconds_and_then_sent(database, tmp_path):
    direct, _, _ = database
    folder, port = tmp_path / "mail", free_port()
    add_message(direct)
    policy = handlers.DeliveryPolicy(max_attempts=5)
    mailer = Mailer({"SMTP_PORT": port})

    def registration_away(registration_id):
        raise TimeoutError("no answer within 10 s")  # the broker or registration is down

    outcome = handlers.deliver(direct, "m1", registration_away, mailer.send, policy)
    waiting = message(direct)
    assert outcome == "postponed" and waiting.status == "pending"
    assert waiting.next_attempt_at < datetime.now(UTC) + timedelta(seconds=10)  # not a minute

    with mail_sink(folder, port):
        poll(lambda: handlers.due_messages(direct, utcnow(), policy) == ["m1"], what="the retry")
        assert handlers.deliver_due(direct, contacts, mailer.send, policy) == {"sent": 1}
        mails = poll(lambda: per_recipient_and_id(folder), what="the mail")

    assert mails == Counter({(ADDRESS, "<m1@lob-regio-eem>"): 1})
    assert (message(direct).status, message(direct).attempts) == ("sent", 2)
