"""`make run` (that is, `lob run`): everything starts, and Ctrl-C stops everything promptly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from lob_cli import runner
from lob_cli.runner import STOP_GRACE_SECONDS, Supervisor
from lob_cli.services import SERVICES
from lob_testing import free_port, isolated_vhost, poll, port_open

pytestmark = pytest.mark.e2e
LOB = str(Path(sys.executable).parent / "lob")
# A clean Ctrl-C stop takes 1-2 s. Well under the grace period, so a child that the supervisor
# had to SIGKILL after STOP_GRACE_SECONDS cannot pass unnoticed.
PROMPT_STOP_SECONDS = 8
assert PROMPT_STOP_SECONDS < STOP_GRACE_SECONDS


def _env(amqp_uri: str, ports: dict[str, int], smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_HTTP", "_DATABASE_URL"))}
    env.pop("LOB_OPERATOR_KEY", None)
    env.update(AMQP_URI=amqp_uri, SMTP_PORT=str(smtp_port))
    for name, port in ports.items():
        env[f"{name.upper()}_HTTP"] = f"127.0.0.1:{port}"
    return env


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_lob_run_starts_all_four_with_a_printed_key_and_ctrl_c_stops_them(tmp_path):
    ports = {name: free_port() for name in SERVICES}
    smtp_port = free_port()
    with isolated_vhost() as amqp_uri:
        process = subprocess.Popen(
            [LOB, "run"],
            cwd=tmp_path,
            env=_env(amqp_uri, ports, smtp_port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            for port in ports.values():
                poll(lambda p=port: _ready(p), timeout=60, what=f"the service on {port}")
            key = (tmp_path / "var" / "operator-key").read_text().strip()
            activities = requests.get(
                f"http://127.0.0.1:{ports['registration']}/activities",
                headers={"Authorization": f"Bearer {key}"},
            ).json()
            assert "voorlichtingsdag" in {a["id"] for a in activities["activities"]}
            assert port_open(smtp_port)

            started = time.monotonic()
            process.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the foreground process
            output, _ = process.communicate(timeout=30)
            took = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
    assert took < PROMPT_STOP_SECONDS, f"stopping took {took:.1f} s:\n{output}"
    assert process.returncode == 0, output
    assert f"operator key   {key}" in output
    assert "all stopped." in output
    assert "killing" not in output
    assert "not cleanly" not in output
    assert not any(port_open(p) for p in [*ports.values(), smtp_port])


def test_lob_run_without_a_broker_says_so_in_one_line(tmp_path):
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    result = subprocess.run(
        [LOB, "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(nowhere, {}, free_port()),
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "No RabbitMQ answers at amqp://guest:***@127.0.0.1:" in lines[0]
    assert "rabbitmq-server" in lines[0]


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _stubborn(ready: Path) -> list[str]:
    """A child that ignores SIGTERM, like a service whose shutdown hangs."""
    return _child(
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )


def test_stop_fails_and_names_a_child_that_had_to_be_killed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "STOP_GRACE_SECONDS", 0.5)
    ready = tmp_path / "ready"
    supervisor = Supervisor(dict(os.environ))
    supervisor.start("calm", _child("import time; time.sleep(60)"))  # dies of our SIGTERM
    supervisor.start("stubborn", _stubborn(ready))
    poll(ready.exists, what="the stubborn child to ignore SIGTERM")

    assert supervisor.stop() == 1
    [summary] = [line for line in capsys.readouterr().out.splitlines() if "not cleanly" in line]
    assert summary.endswith("stopped, but not cleanly: stubborn was killed after 0.5s")


def test_stop_fails_and_names_a_child_that_exited_with_an_error(capsys):
    supervisor = Supervisor(dict(os.environ))
    supervisor.start("calm", _child("import time; time.sleep(60)"))
    supervisor.start("broken", _child("raise SystemExit(3)"))
    poll(lambda: supervisor.children["broken"].poll() is not None, what="broken to exit")

    assert supervisor.stop() == 1
    [summary] = [line for line in capsys.readouterr().out.splitlines() if "not cleanly" in line]
    assert summary.endswith("stopped, but not cleanly: broken exited with code 3")
