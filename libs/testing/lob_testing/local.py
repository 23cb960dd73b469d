"""The services as local processes on their own ports, databases and vhost: for end-to-end
tests and benchmarks (never the ports or files of `make run`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from lob_cli.services import SERVICES
from lob_testing import OPERATOR_KEY, free_port, poll, port_open, read_mail

BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User+sys CPU seconds of a live process (fields 14 and 15 of /proc/<pid>/stat); None
    once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile of `values` (nearest rank, as the benchmarks report latencies)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LocalSystem:
    """The services as processes, with their ports, databases and the mail folder."""

    def __init__(self, root: Path, amqp_uri: str) -> None:
        self.root = root
        self.mail = root / "mail"
        self.amqp_uri = amqp_uri
        self.ports = {name: free_port() for name in SERVICES}
        self.smtp_port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = dict(
            os.environ,
            AMQP_URI=amqp_uri,
            LOB_OPERATOR_KEY=OPERATOR_KEY,
            LOG_FORMAT="json",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(self.smtp_port),
            EVENT_RETRY_BASE_SECONDS="0.1",
            PYTHONWARNINGS="ignore",
        )
        for name, port in self.ports.items():
            self.env[f"{name.upper()}_HTTP"] = f"127.0.0.1:{port}"
            self.env[f"{name.upper()}_DATABASE_URL"] = f"sqlite:///{root}/{name}.db"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def lob(self, *args: str) -> None:
        subprocess.run(
            [str(BIN / "lob"), *args], env=self.env, cwd=self.root, check=True, capture_output=True
        )

    def start_mail_sink(self) -> None:
        self.processes["mail"] = subprocess.Popen(
            [str(BIN / "lob"), "mail-sink", "--dir", str(self.mail), "--port", str(self.smtp_port)],
            env=self.env,
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        poll(lambda: port_open(self.smtp_port), what="the SMTP sink")

    def start(self, name: str) -> None:
        self.start_all([name])

    def start_all(self, names: list[str]) -> None:
        """Start the services at once (each takes seconds to import), then wait for each."""
        for name in names:
            info = SERVICES[name]
            log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            self.processes[name] = subprocess.Popen(
                [str(BIN / "nameko"), "run", "--config", str(info.config_path), info.entry],
                env=self.env,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for name in names:
            poll(lambda n=name: self._ready(n), timeout=90, what=f"{name} to be ready")

    def _ready(self, name: str) -> bool:
        if self.processes[name].poll() is not None:
            raise AssertionError(f"{name} exited: {(self.root / f'{name}.log').read_text()}")
        try:
            return requests.get(f"{self.url(name)}/readyz", timeout=10).status_code == 200
        except requests.RequestException:  # refused, or too slow to answer yet (a busy machine)
            return False

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    def emails_to(self, address: str) -> list:
        return read_mail(self.mail, to=address)

    def consumed(self, service: str, handler: str, outcome: str) -> float:
        text = requests.get(f"{self.url(service)}/metrics", timeout=5).text
        pattern = (
            rf'lob_events_consumed_total\{{event_type="signed_up",handler="{handler}",'
            rf'outcome="{outcome}"\}} ([0-9.]+)'
        )
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0
