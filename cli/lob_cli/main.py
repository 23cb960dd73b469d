"""`lob`: the operator's tool. Run the system, migrate, seed the demo season, look after dead
letters, manage API keys (`lob key ...`), make plans (`lob schedule ...`), produce the region's
tables (`lob report ...`), load the 2024-2025 season through the API (`lob demo`)."""

from __future__ import annotations

import os
import signal
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
    """Migrate and start all four services and a local mail sink (Ctrl-C stops them).

    A service that dies is restarted; see `lob_cli.runner`."""
    from lob_cli.runner import (
        BrokerUnavailable,
        RunRefused,
        Supervisor,
        check_ports_free,
        claim_var,
        development_key,
        ensure_broker,
        mail_sink_argv,
        nameko_argv,
    )

    var = Path("var").resolve()
    amqp_uri = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")
    smtp_port = int(os.environ.get("SMTP_PORT", "1025"))  # notifications sends to the same port
    try:
        ensure_broker(amqp_uri)
        lock = claim_var(var)  # noqa: F841 - held until this process ends
        check_ports_free(
            {
                "the mail sink": ("127.0.0.1", smtp_port),
                **{s.name: _host_port(s.address) for s in SERVICES.values()},
            }
        )
    except (BrokerUnavailable, RunRefused) as exc:
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
    supervisor = Supervisor(var, env)
    supervisor.add("mail", mail_sink_argv(var / "mail", smtp_port))
    for name in SERVICES:
        supervisor.add(name, nameko_argv(name))
    supervisor.start()
    try:
        supervisor.wait_until_running()
    except RunRefused as exc:
        click.echo(f"lob run: {exc}", err=True)
        sys.exit(1)
    _banner(key, var, smtp_port)
    sys.exit(supervisor.wait())


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "0.0.0.0", int(port)


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
    """Issue a new API key for a school (its previous key stops working). Short for
    `lob key create --role school --school SCHOOL_ID --name SCHOOL_ID` after revoking."""
    from registration.handlers import issue_school_key

    try:
        key = issue_school_key(open_database("registration"), school_id)
    except LookupError:
        raise click.ClickException(
            f"no school with id {school_id!r}; see `lob seed-demo`"
        ) from None
    click.echo(key)


@lob.group()
def key() -> None:
    """Named API keys with a role: operator, school (one school), website (the regional site),
    host (an mbo college: the lists of its own activities)."""


@key.command("create")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["operator", "school", "website", "host"]),
    help="What the key may do.",
)
@click.option("--school", "school_id", help="school and host keys: the school's id.")
@click.option("--name", required=True, help="How the key is listed and revoked.")
def key_create(role: str, school_id: str | None, name: str) -> None:
    """Make a key and print it. It is shown this once: only its hash is stored."""
    from registration.auth import create_key
    from registration.domain.caller import CallerRole
    from registration.domain.errors import InvalidInput, KeyNameTaken, UnknownSchool

    try:
        secret = create_key(open_database("registration"), name, CallerRole(role), school_id)
    except InvalidInput as exc:
        raise click.UsageError("; ".join(v.message for v in exc.violations)) from None
    except UnknownSchool:
        raise click.ClickException(f"no school with id {school_id!r}") from None
    except KeyNameTaken:
        raise click.ClickException(
            f"a key named {name!r} exists; revoke it first or choose another name"
        ) from None
    click.echo(secret)


@key.command("list")
def key_list() -> None:
    """Every key: name, role, school, when made and (if so) revoked. Never the key itself."""
    from registration.auth import list_keys

    for info in list_keys(open_database("registration")):
        state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
        click.echo(
            f"{info.name}\t{info.role}\t{info.school_id or '-'}\t"
            f"created {info.created_at:%Y-%m-%d %H:%M}\t{state}"
        )


@key.command("revoke")
@click.argument("name")
def key_revoke(name: str) -> None:
    """The key NAME stops working at once."""
    from registration.auth import revoke_key
    from registration.domain.errors import UnknownKey

    try:
        revoke_key(open_database("registration"), name)
    except UnknownKey:
        raise click.ClickException(f"no active key named {name!r} (see `lob key list`)") from None
    click.echo(f"revoked {name}")


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
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop, not a failure
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
    counts = {queue: count for queue, count in dead_letter_counts(uri, service).items() if count}
    if not counts:
        click.echo(f"{service}: none")
        return
    for queue, count in counts.items():
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
    from lob_cli.demo import demo
    from lob_cli.report import report
    from lob_cli.schedule import schedule

    lob.add_command(schedule)
    lob.add_command(report)
    lob.add_command(demo)


_add_service_commands()

if __name__ == "__main__":
    lob()
