"""`lob`: the operator's tool. Run the system, migrate, seed the demo season, look after dead
letters, issue school keys, make plans (`lob schedule ...`)."""

from __future__ import annotations

import os
import sys
import time
from datetime import date
from pathlib import Path

import click

from lob_cli.services import SERVICES, migrate_service, open_database

SERVICE_NAMES = click.Choice(sorted(SERVICES))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def lob() -> None:
    """Operate the LOB services of a region (registration, scheduling, notifications,
    reporting)."""


@lob.command()
@click.option("--no-demo", is_flag=True, help="Do not create the demo schools and activities.")
def run(no_demo: bool) -> None:
    """Migrate and start all four services and a local mail sink (Ctrl-C stops them)."""
    from lob_cli.runner import (
        BrokerUnavailable,
        Supervisor,
        development_key,
        ensure_broker,
        mail_sink_argv,
        nameko_argv,
    )

    var = Path("var").resolve()
    amqp_uri = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")
    try:
        ensure_broker(amqp_uri)
    except BrokerUnavailable as exc:
        click.echo(f"lob run: {exc}", err=True)
        sys.exit(2)
    key = os.environ.get("LOB_OPERATOR_KEY") or development_key(var)
    os.environ["LOB_OPERATOR_KEY"] = key
    env = dict(
        os.environ,
        LOG_FORMAT=os.environ.get("LOG_FORMAT", "text"),
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS="ignore:pkg_resources is deprecated:UserWarning",
    )
    for name in SERVICES:
        migrate_service(name)
    if not no_demo:
        counts = _seed_demo(refresh=False)
        click.echo(
            f"demo season: {counts['schools']} schools, "
            f"{counts['activities_created']} new activities"
        )
    smtp_port = int(os.environ.get("SMTP_PORT", "1025"))  # notifications sends to the same port
    supervisor = Supervisor(env)
    supervisor.start("mail", mail_sink_argv(var / "mail", smtp_port))
    for name in SERVICES:
        supervisor.start(name, nameko_argv(name))
    _banner(key, var, smtp_port)
    sys.exit(supervisor.wait())


def _banner(key: str, var: Path, smtp_port: int) -> None:
    lines = [
        "",
        "LOB services starting:",
        *(
            f"  {s.name:<14} http://{s.address}  (/metrics /healthz /readyz)"
            for s in SERVICES.values()
        ),
        f"  mail sink      smtp://127.0.0.1:{smtp_port} -> {var / 'mail'}/*.eml",
        f"  operator key   {key}   (development only; also in var/operator-key)",
        "Ctrl-C stops everything.",
        "",
    ]
    click.echo("\n".join(lines))


@lob.command()
@click.argument("services", nargs=-1, type=SERVICE_NAMES)
def migrate(services: tuple[str, ...]) -> None:
    """Bring the databases of SERVICES (default: all) to the newest schema."""
    for name in services or tuple(SERVICES):
        migrate_service(name)
        click.echo(f"{name}: schema up to date")


def _seed_demo(refresh: bool) -> dict[str, int]:
    from registration.demo import seed

    return seed(open_database("registration"), date.today(), refresh=refresh)


@lob.command("seed-demo")
@click.option("--refresh", is_flag=True, help="Republish existing demo activities too.")
def seed_demo(refresh: bool) -> None:
    """Create region Eem's schools and a demo season of activities."""
    migrate_service("registration")
    counts = _seed_demo(refresh)
    click.echo(f"{counts['schools']} schools, {counts['activities_created']} new activities")


@lob.command("school-key")
@click.argument("school_id")
def school_key(school_id: str) -> None:
    """Issue a new API key for a school (its previous key stops working)."""
    from registration.handlers import issue_school_key

    try:
        key = issue_school_key(open_database("registration"), school_id)
    except LookupError:
        raise click.ClickException(
            f"no school with id {school_id!r}; see `lob seed-demo`"
        ) from None
    click.echo(key)


@lob.command()
@click.argument("person_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(person_id: str, yes: bool) -> None:
    """Erase a person (AVG request): registration deletes them, the other services follow."""
    from registration.handlers import erase_person

    if not yes:
        click.confirm(f"Erase person {person_id} and all their registrations for good?", abort=True)
    if not erase_person(open_database("registration"), person_id):
        raise click.ClickException(f"no person with id {person_id} (already erased?)")
    click.echo(f"erased {person_id}; scheduling, notifications and reporting follow the event")


@lob.command("mail-sink")
@click.option(
    "--dir",
    "folder",
    default="var/mail",
    type=click.Path(path_type=Path),
    show_default=True,
    help="Where each received message is saved as .eml.",
)
@click.option("--port", default=1025, show_default=True)
def mail_sink(folder: Path, port: int) -> None:
    """A local SMTP server that keeps every message as a file (development and tests)."""
    from lob_cli.mailsink import start_sink

    controller = start_sink(folder, port=port)
    click.echo(f"mail sink listening on 127.0.0.1:{port}, saving to {folder}/", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@lob.group("dead-letters")
def dead_letters() -> None:
    """Messages a service could not process, parked with the reason."""


@dead_letters.command("list")
@click.argument("service", type=SERVICE_NAMES)
@click.option("--limit", default=50, show_default=True)
def dead_letters_list(service: str, limit: int) -> None:
    """Show parked messages of SERVICE (they stay parked)."""
    from lob_common.config import service_config
    from lob_common.messaging import dead_letter_counts, list_dead_letters

    uri = service_config(service)["AMQP_URI"]
    for queue, count in dead_letter_counts(uri, service).items():
        click.echo(f"{queue}: {count}")
    for letter in list_dead_letters(uri, service, limit):
        click.echo(
            f"- {letter.event_type} {letter.event_id} after {letter.attempts} attempt(s) "
            f"at {letter.failed_at}: {letter.error}"
        )


@dead_letters.command("replay")
@click.argument("service", type=SERVICE_NAMES)
@click.option("--limit", default=None, type=int, help="At most this many messages.")
def dead_letters_replay(service: str, limit: int | None) -> None:
    """Put parked messages of SERVICE back in their queues (after fixing the cause)."""
    from lob_common.config import service_config
    from lob_common.messaging import replay_dead_letters

    moved = replay_dead_letters(service_config(service)["AMQP_URI"], service, limit)
    click.echo(f"{moved} message(s) replayed")


def _add_service_commands() -> None:
    from lob_cli.schedule import schedule

    lob.add_command(schedule)


_add_service_commands()

if __name__ == "__main__":
    lob()
