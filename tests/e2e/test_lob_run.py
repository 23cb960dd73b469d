"""`make run` (that is, `lob run`): everything starts, and Ctrl-C stops everything promptly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest
import requests
from supervisor.xmlrpc import SupervisorTransport

from lob_cli import runner
from lob_cli.runner import STOP_GRACE_SECONDS, Supervisor, claim_var
from lob_cli.services import SERVICES
from lob_testing import free_port, isolated_vhost, poll, port_open

pytestmark = pytest.mark.e2e
LOB = str(Path(sys.executable).parent / "lob")
# A clean Ctrl-C stop takes 2-4 s on an idle machine, up to 10 s on the shared one under load
# (every service stops at once, each in 1-3 s of its own). A child that needs the SIGKILL
# after STOP_GRACE_SECONDS is named in the output ("killed"), which the test also checks.
PROMPT_STOP_SECONDS = STOP_GRACE_SECONDS
_BROKER = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")


def _env(amqp_uri: str, ports: dict[str, int], smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_HTTP", "_DATABASE_URL"))}
    env.pop("LOB_OPERATOR_KEY", None)
    env.update(AMQP_URI=amqp_uri, SMTP_PORT=str(smtp_port))
    for name, port in ports.items():
        env[f"{name.upper()}_HTTP"] = f"127.0.0.1:{port}"
    return env


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    except requests.RequestException:  # refused, or too slow to answer yet (a busy machine)
        return False


def _supervised(var: Path) -> dict[str, dict]:
    """What supervisord says about each child (state, pid), through its socket in var/."""
    transport = SupervisorTransport(None, None, f"unix://{var / 'supervisor.sock'}")
    rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor
    return {info["name"]: info for info in rpc.getAllProcessInfo()}


def test_lob_run_starts_all_four_heals_a_killed_one_and_ctrl_c_stops_them(tmp_path):
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

            before = _supervised(tmp_path / "var")
            os.kill(before["registration"]["pid"], signal.SIGKILL)
            for other in ("scheduling", "notifications", "reporting"):  # not taken down
                assert _ready(ports[other]), other
            poll(lambda: _ready(ports["registration"]), timeout=60, what="registration back")
            after = _supervised(tmp_path / "var")
            assert after["registration"]["pid"] != before["registration"]["pid"]
            assert {n: after[n]["pid"] for n in after if n != "registration"} == {
                n: before[n]["pid"] for n in before if n != "registration"
            }

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
    [restart] = [line for line in output.splitlines() if "restarting" in line]
    assert restart.endswith("registration died (terminated by SIGKILL); restarting it")
    assert "all stopped." in output
    assert "killing" not in output
    assert "not cleanly" not in output
    assert not any(port_open(p) for p in [*ports.values(), smtp_port])


def test_a_second_lob_run_on_the_same_var_refuses_in_one_line(tmp_path):
    holder = claim_var(tmp_path / "var")  # a `lob run` that is running
    try:
        result = subprocess.run(
            [LOB, "run"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=_env(_BROKER, {n: free_port() for n in SERVICES}, free_port()),
            timeout=60,
        )
    finally:
        holder.close()
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert f"another `lob run` (pid {os.getpid()}) is using {tmp_path / 'var'}" in line
    assert not list((tmp_path / "var").glob("*.db"))  # nothing migrated, nothing seeded


def test_lob_run_refuses_a_port_in_use_in_one_line_before_touching_a_database(tmp_path):
    ports = {name: free_port() for name in SERVICES}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["reporting"]))
        squatter.listen()
        result = subprocess.run(
            [LOB, "run"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=_env(_BROKER, ports, free_port()),
            timeout=60,
        )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert f"port {ports['reporting']} (reporting) is in use by another program" in line
    assert not list((tmp_path / "var").glob("*.db"))


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


def _calm() -> list[str]:
    """A child that stops cleanly on SIGTERM, as the services do."""
    return _child(
        "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
        "time.sleep(60)"
    )


def _supervisor(var: Path, **children: list[str]) -> Supervisor:
    supervisor = Supervisor(var, dict(os.environ))
    for name, argv in children.items():
        supervisor.add(name, argv)
    supervisor.start()
    supervisor.wait_until_running()
    return supervisor


def test_stop_fails_and_names_a_child_that_had_to_be_killed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "STOP_GRACE_SECONDS", 1)
    ready = tmp_path / "ready"
    supervisor = _supervisor(tmp_path, calm=_calm(), stubborn=_stubborn(ready))
    poll(ready.exists, what="the stubborn child to ignore SIGTERM")

    assert supervisor.stop() == 1
    [summary] = [line for line in capsys.readouterr().out.splitlines() if "not cleanly" in line]
    assert summary.endswith("stopped, but not cleanly: stubborn was killed after 1s")


def test_a_child_that_dies_is_restarted_and_one_that_keeps_failing_is_named_at_stop(
    tmp_path, capsys
):
    supervisor = _supervisor(tmp_path, calm=_calm(), broken=_child("raise SystemExit(3)"))
    poll(
        lambda: _supervised(tmp_path)["broken"]["statename"] == "BACKOFF",
        what="broken waiting to be started again",
    )

    assert supervisor.stop() == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.endswith("broken died (exit status 3); restarting it") for line in lines)
    [summary] = [line for line in lines if "not cleanly" in line]
    assert summary.endswith("stopped, but not cleanly: broken was failing (exit status 3)")
