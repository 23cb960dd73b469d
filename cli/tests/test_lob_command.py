"""The operator's command without servers: what it offers, the one database bootstrap, plans
from a file and the plain-words errors an operator meets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from lob_cli.main import lob
from lob_cli.services import SERVICES, open_database

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "infoday"


@pytest.fixture
def databases(tmp_path, monkeypatch):
    """Every service on a SQLite file of its own, as `make run` has them."""
    for name in SERVICES:
        monkeypatch.setenv(f"{name.upper()}_DATABASE_URL", f"sqlite:///{tmp_path}/{name}.db")
    return tmp_path


def test_help_names_every_operator_command():
    result = CliRunner().invoke(lob, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "migrate", "seed-demo", "school-key", "key", "dead-letters", "schedule"):
        assert f"  {command} " in result.output


def test_migrate_brings_every_service_schema_up_to_date(databases):
    result = CliRunner().invoke(lob, ["migrate"])
    assert result.exit_code == 0, result.output
    for name in SERVICES:
        assert f"{name}: schema up to date" in result.output
        handle = open_database(name)
        tables = set(inspect(handle.engine).get_table_names())
        handle.engine.dispose()
        assert {"outbox", "processed_events"} <= tables
        assert set(SERVICES[name].metadata.tables) <= tables


def test_a_school_key_for_an_unknown_school_is_refused_in_plain_words(databases):
    result = CliRunner().invoke(lob, ["school-key", "no-such-school"])
    assert result.exit_code == 1
    assert "no school with id 'no-such-school'" in result.output


def test_keys_are_made_once_listed_without_the_key_and_revoked_by_name(databases):
    from registration.auth import caller_for
    from registration.demo import SCHOOLS
    from registration.domain.model import School
    from registration.handlers import register_school

    db = open_database("registration")
    for ident, name, kind, municipality in SCHOOLS[:3] + SCHOOLS[-4:]:
        register_school(db, School(ident, name, kind, municipality))
    runner = CliRunner()

    made = runner.invoke(
        lob, ["key", "create", "--role", "host", "--school", "mbo-amersfoort", "--name", "mboa"]
    )
    site = runner.invoke(lob, ["key", "create", "--role", "website", "--name", "regio-site"])
    again = runner.invoke(lob, ["key", "create", "--role", "website", "--name", "regio-site"])
    no_school = runner.invoke(lob, ["key", "create", "--role", "school", "--name", "x"])
    unknown = runner.invoke(
        lob, ["key", "create", "--role", "school", "--school", "nergens", "--name", "y"]
    )
    key = made.output.strip()
    host = caller_for(db, key, operator_key=None)
    revoked = runner.invoke(lob, ["key", "revoke", "mboa"])
    listed = runner.invoke(lob, ["key", "list"])

    assert made.exit_code == 0 and key.startswith("lob_"), made.output
    assert (host.role, host.school_id, host.key_name) == ("host", "mbo-amersfoort", "mboa")
    assert site.exit_code == 0
    assert again.exit_code == 1 and "a key named 'regio-site' exists" in again.output
    assert no_school.exit_code == 2 and "hoort bij een school" in no_school.output
    assert unknown.exit_code == 1 and "no school with id 'nergens'" in unknown.output
    assert revoked.exit_code == 0
    assert caller_for(db, key, operator_key=None) is None  # a revoked key stops at once
    lines = listed.output.splitlines()
    assert any(
        line.startswith("mboa\thost\tmbo-amersfoort\t") and "revoked" in line for line in lines
    )
    assert any(line.startswith("regio-site\twebsite\t-\t") and "active" in line for line in lines)
    assert key not in listed.output
    db.engine.dispose()


def test_schedule_infoday_writes_a_plan_that_the_region_scorer_accepts(tmp_path):
    plan = tmp_path / "plan.json"
    instance = SHARED / "public" / "public-60-t110.json"
    result = CliRunner().invoke(lob, ["schedule", "infoday", str(instance), "-o", str(plan)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["pupils"] == 60
    scored = subprocess.run(
        [sys.executable, str(SHARED / "score.py"), str(instance), str(plan)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert scored.returncode == 0, scored.stdout + scored.stderr


def test_schedule_infoday_names_a_file_it_cannot_read(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(
        lob, ["schedule", "infoday", str(broken), "-o", str(tmp_path / "p.json")]
    )
    assert result.exit_code == 1
    assert f"cannot read the instance {broken}" in result.output
    assert not (tmp_path / "p.json").exists()
