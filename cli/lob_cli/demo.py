"""`lob demo`: load region Eem's 2024-2025 season into the running system, through its API.

The way a region loads a past season to compare years (docs/api.md, "Loading a finished
season"): the schools and institutions of Tabel 3a and 3b (PUT /schools/{id}), the activities of
that year with their real dates, published as historical (POST /activities; nobody is mailed,
nothing is planned), and their participants as the annual report counted them (POST
/activities/{id}/history: anonymous, professionals with their attendance). The data is
lob_cli.season_2024_2025's. Every step is idempotent: running it again changes nothing.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import requests

from lob_cli import season_2024_2025 as season
from lob_cli.services import SERVICES

CHUNK = 500  # participants per call (the API takes up to 5000)
KEY_PREFIX = "eem-2024-2025-"


class Api:
    """The registration API as an operator calls it; a refusal stops the demo with its detail."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, ok: Iterable[int] = (200, 201), **kwargs: Any) -> Any:
        try:
            answer = self.session.request(method, f"{self.url}{path}", timeout=60, **kwargs)
        except requests.ConnectionError:
            raise click.ClickException(
                f"no answer from {self.url}: is the system running (`lob run`)?"
            ) from None
        if answer.status_code not in ok:
            raise click.ClickException(f"{method} {path}: {answer.status_code} {_detail(answer)}")
        return answer


def _detail(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:300]
    errors = "; ".join(f"{e['field']}: {e['message']}" for e in body.get("errors") or [])
    return " ".join(filter(None, (body.get("detail"), errors)))


def activity_body(activity: season.SeasonActivity) -> dict[str, Any]:
    return {
        "id": activity.id,
        "kind": activity.kind,
        "title": activity.title,
        "starts_at": activity.starts_at.isoformat(),
        "ends_at": activity.ends_at.isoformat(),
        "location": activity.location,
        "audience": list(activity.audience),
        "historical": True,
        **activity.details,
    }


def history_rows() -> dict[str, list[dict[str, Any]]]:
    """The season's participants per activity, as history rows: the synthetic people of
    season_2024_2025 without their names and birth dates (only the age on the day travels,
    and registration keeps only its band). Keys are stable: the same each run."""
    days = {a.id: a.day for a in season.ACTIVITIES}
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for n, person in enumerate(season.participants()):
        day = days[person.activity_id]
        born = person.date_of_birth
        age = None
        if born is not None:
            age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
        rows[person.activity_id].append(
            {
                "key": f"{KEY_PREFIX}{n:05d}",
                "role": person.role,
                "school_id": person.school_id,
                "age": age,
                "municipality": person.municipality,
                "attended": person.attended,
            }
        )
    return rows


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_season(api: Api, echo: Any = click.echo) -> dict[str, int]:
    """Schools, activities, participants; returns what was new (all 0 on a second run)."""
    new = {"schools": 0, "activities": 0, "participants": 0, "corrected": 0}
    for school in season.SCHOOLS:
        body = {"name": school.name, "kind": school.kind, "municipality": school.municipality}
        if api.call("PUT", f"/schools/{school.id}", json=body).status_code == 201:
            new["schools"] += 1
    echo(f"schools and institutions: {len(season.SCHOOLS)} ({new['schools']} new)")

    for activity in season.ACTIVITIES:
        if api.call("GET", f"/activities/{activity.id}", ok=(200, 404)).status_code == 404:
            api.call("POST", "/activities", json=activity_body(activity))
            new["activities"] += 1
    echo(f"activities of {season.SCHOOL_YEAR}: {len(season.ACTIVITIES)} ({new['activities']} new)")

    rows = history_rows()
    total = sum(len(r) for r in rows.values())
    with click.progressbar(
        length=total, label="participants", file=click.get_text_stream("stderr")
    ) as bar:
        for activity in season.ACTIVITIES:
            for chunk in _chunks(rows.get(activity.id, []), CHUNK):
                answer = api.call(
                    "POST", f"/activities/{activity.id}/history", json={"participants": chunk}
                ).json()
                new["participants"] += answer["recorded"]
                new["corrected"] += answer["corrected"]
                bar.update(len(chunk))
    echo(
        f"participants: {total} ({new['participants']} new, {new['corrected']} corrected) "
        f"in {sum(1 for a in season.ACTIVITIES if rows.get(a.id))} activities"
    )
    return new


def wait_for_reporting(url: str, key: str, timeout: float, echo: Any = click.echo) -> None:
    """Until reporting counts every participant of the season (its events travel async)."""
    expected = {activity_id: len(rows) for activity_id, rows in history_rows().items()}
    deadline = time.monotonic() + timeout
    counted: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            answer = requests.get(
                f"{url.rstrip('/')}/reports/participation",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            if answer.ok:
                counted = {a["activity_id"]: a["participants"] for a in answer.json()["activities"]}
                if all(counted.get(a) == n for a, n in expected.items()):
                    echo(f"reporting counts all {sum(expected.values())} participants")
                    return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    missing = sum(expected.values()) - sum(counted.get(a, 0) for a in expected)
    raise click.ClickException(
        f"reporting ({url}) still misses {missing} participant(s) after {timeout:.0f} s; "
        "is it running? (`lob dead-letters list reporting`)"
    )


def operator_key(var: Path) -> str | None:
    """The key `lob run` uses: LOB_OPERATOR_KEY, or the development key in var/operator-key."""
    if os.environ.get("LOB_OPERATOR_KEY"):
        return os.environ["LOB_OPERATOR_KEY"]
    path = var / "operator-key"
    return path.read_text().strip() if path.exists() else None


@click.command()
@click.option(
    "--url",
    default=lambda: f"http://{SERVICES['registration'].address}",
    show_default="http://$REGISTRATION_HTTP (127.0.0.1:8000)",
    help="The registration API to load the season into.",
)
@click.option(
    "--reporting-url",
    default=lambda: f"http://{SERVICES['reporting'].address}",
    show_default="http://$REPORTING_HTTP (127.0.0.1:8003)",
    help="The reporting API to wait for.",
)
@click.option(
    "--key",
    envvar="LOB_OPERATOR_KEY",
    help="An operator key (default: $LOB_OPERATOR_KEY or var/operator-key, as `lob run`).",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until reporting counts every participant.",
)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for reporting.")
def demo(url: str, reporting_url: str, key: str | None, wait: bool, timeout: float) -> None:
    """Load region Eem's 2024-2025 season (Tabel 3a and 3b of its annual report) into the
    running system through its API; then `lob report tabel-3a --school-year 2024-2025`.
    Running it again changes nothing."""
    key = key or operator_key(Path("var"))
    if not key:
        raise click.UsageError("no operator key: start the system with `lob run`, or give --key")
    api = Api(url, key)
    click.echo(f"loading the {season.SCHOOL_YEAR} season of region Eem into {url}")
    load_season(api)
    if wait:
        wait_for_reporting(reporting_url, key, timeout)
    click.echo(f"try: lob report tabel-3a --school-year {season.SCHOOL_YEAR}")
