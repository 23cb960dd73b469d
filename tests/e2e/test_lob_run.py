"""`make run` (that is, `lob run`): everything starts, and Ctrl-C stops everything promptly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from lob_cli.services import SERVICES
from lob_common.testing import free_port, isolated_vhost, poll, port_open

pytestmark = pytest.mark.e2e
LOB = str(Path(sys.executable).parent / "lob")


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

            process.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the foreground process
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0
    assert f"operator key   {key}" in output
    assert "all stopped." in output
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
