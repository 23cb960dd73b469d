"""`lob mail`: see exactly what a kind of mail looks like, list failed deliveries, send again."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def mail() -> None:
    """Notifications' mail: preview kinds, list failures, resend them."""


@mail.command("preview")
@click.argument("kind", required=False)
@click.option("--list", "list_kinds", is_flag=True, help="Name every kind of mail.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the message to this .eml file instead of printing it.",
)
def preview(kind: str | None, list_kinds: bool, output: Path | None) -> None:
    """Render KIND from a sample event as the complete MIME message, exactly as it is sent
    (headers, plain text and HTML, the calendar invitation where there is one)."""
    from lob_common.config import service_config
    from notifications.adapters.smtp import Mailer
    from notifications.domain.samples import sample_mail
    from notifications.domain.texts import KINDS

    if list_kinds:
        for name, (who, what) in KINDS.items():
            click.echo(f"{name:<26} {who:<12} {what}")
        return
    if not kind:
        raise click.UsageError("name a KIND (see `lob mail preview --list`)")
    if kind not in KINDS:
        raise click.BadParameter(
            f"no kind {kind!r}; known kinds: {', '.join(KINDS)}", param_hint="KIND"
        )
    raw = sample_mail(kind, Mailer(service_config("notifications")))
    if output:
        output.write_bytes(raw)
        click.echo(f"{kind}: written to {output}")
    else:
        click.echo(raw.decode("utf-8", "replace"))


@mail.command("failed")
@click.option("--limit", default=100, show_default=True)
def failed(limit: int) -> None:
    """List failed deliveries: id, kind, when and why (never the address)."""
    from lob_cli.services import open_database
    from lob_common.timeutil import local
    from notifications.handlers import failed_messages

    rows = failed_messages(open_database("notifications"), limit)
    if not rows:
        click.echo("no failed deliveries")
        return
    for row in rows:
        when = f"{local(row['failed_at']):%Y-%m-%d %H:%M}"
        click.echo(f"{row['id']}  {row['kind']:<24} {when}  {row['reason']}")


@mail.command("resend")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every failed delivery.")
def resend(ids: tuple[str, ...], everything: bool) -> None:
    """Queue failed deliveries (by ID, or --all) again; the running service sends them."""
    from lob_cli.services import open_database
    from notifications.handlers import resend as queue_again

    if bool(ids) == everything:
        raise click.UsageError("give message ids or --all (not both)")
    count = queue_again(open_database("notifications"), None if everything else list(ids))
    click.echo(f"{count} message(s) queued again")
    if ids and count < len(ids):
        raise click.ClickException(f"{len(ids) - count} id(s) are not failed deliveries")
