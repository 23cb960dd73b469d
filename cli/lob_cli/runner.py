"""`lob run`: the whole system in the foreground for a newcomer or a developer.

Starts the local SMTP sink and the four services as separate `nameko run` processes, each in its
own session so that Ctrl-C reaches only this supervisor, which then stops the children in order
(SIGTERM, then SIGKILL after a grace period). Their output is shown line by line with a prefix.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kombu import Connection

from lob_cli.services import SERVICES

COLOURS = {
    "mail": "37",
    "registration": "36",
    "scheduling": "35",
    "notifications": "33",
    "reporting": "32",
}
STOP_GRACE_SECONDS = 15


class BrokerUnavailable(RuntimeError):
    pass


def broker_reachable(amqp_uri: str, timeout: float = 3.0) -> bool:
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:  # noqa: BLE001 - any failure means: not reachable
        return False


def ensure_broker(amqp_uri: str, say: callable = print) -> None:
    """Make sure RabbitMQ answers; start (or install) it on a Debian machine when we are root."""
    if broker_reachable(amqp_uri):
        return
    # Only a broker we could start ourselves: this machine, RabbitMQ's own port, and root.
    local = any(
        f"@{h}:5672/" in amqp_uri or amqp_uri.endswith(f"@{h}:5672")
        for h in ("localhost", "127.0.0.1")
    )
    if local and os.geteuid() == 0:
        if not shutil.which("rabbitmq-server") and shutil.which("apt-get"):
            say("RabbitMQ is not installed; installing it with apt-get (one time, a minute)...")
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "rabbitmq-server"],
                check=False,
                stdout=subprocess.DEVNULL,
            )
        if shutil.which("rabbitmq-server"):
            say("RabbitMQ is not running; starting it with `rabbitmq-server -detached`...")
            subprocess.run(
                ["rabbitmq-server", "-detached"],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if broker_reachable(amqp_uri):
                    say("RabbitMQ is up.")
                    return
                time.sleep(1)
    raise BrokerUnavailable(
        f"No RabbitMQ answers at {_safe(amqp_uri)}. Start one (Debian: `sudo apt-get install "
        "rabbitmq-server && sudo rabbitmq-server -detached`; or `docker run -d -p 5672:5672 "
        "rabbitmq:3`) or point AMQP_URI at yours, then run `make run` again."
    )


def _safe(uri: str) -> str:
    """The URI without its password, for messages."""
    if "@" not in uri or "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def development_key(var_dir: Path) -> str:
    """A random operator key for this checkout, kept in var/operator-key (never a fixed key)."""
    path = var_dir / "operator-key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = "dev_" + secrets.token_urlsafe(24)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


class Supervisor:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, subprocess.Popen] = {}
        self.colour = sys.stdout.isatty()
        self._print_lock = threading.Lock()

    def say(self, name: str, line: str) -> None:
        prefix = f"{name:>13} | "
        if self.colour:
            prefix = f"\033[{COLOURS.get(name, '0')}m{prefix}\033[0m"
        with self._print_lock:
            sys.stdout.write(prefix + line.rstrip("\n") + "\n")
            sys.stdout.flush()

    def start(self, name: str, argv: list[str]) -> None:
        process = subprocess.Popen(
            argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.children[name] = process
        threading.Thread(target=self._pump, args=(name, process), daemon=True).start()

    def _pump(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            if "EventletDeprecationWarning" in line or line.startswith(
                (
                    "Eventlet is deprecated",
                    "we strongly recommend",
                    "If you are already",
                    "framework.  For more",
                    "https://eventlet",
                    "  import eventlet",
                )
            ):
                continue
            if line.strip():
                self.say(name, line)

    def wait(self) -> int:
        """Block until a child exits (then stop the rest) or a stop signal arrives."""
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            for name, process in self.children.items():
                if process.poll() is not None:
                    self.say(
                        "lob",
                        f"{name} stopped with exit code {process.returncode}; stopping the others",
                    )
                    stop.set()
                    break
            stop.wait(0.5)
        return self.stop()

    def stop(self) -> int:
        """Stop every child: 0 only when each one exited cleanly within the grace period, else 1.

        A child that had to be killed, or that failed, makes `lob run` fail with one line naming
        it, so a script or CI job sees the unclean stop instead of an "all stopped" that hides it.
        """
        self.say("lob", "stopping...")
        terminated: set[str] = set()
        for name, process in reversed(list(self.children.items())):
            if process.poll() is None:
                process.terminate()
                terminated.add(name)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        problems: list[str] = []
        for name, process in self.children.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.say("lob", f"{name} did not stop in {STOP_GRACE_SECONDS}s; killing it")
                process.kill()
                process.wait()
                problems.append(f"{name} was killed after {STOP_GRACE_SECONDS}s")
            else:
                if not _clean_exit(process.returncode, name in terminated):
                    problems.append(f"{name} exited with code {process.returncode}")
        if problems:
            self.say("lob", "stopped, but not cleanly: " + "; ".join(problems))
            return 1
        self.say("lob", "all stopped.")
        return 0


def _clean_exit(returncode: int, terminated: bool) -> bool:
    """Exit code 0, or death by the SIGTERM we sent (the mail sink keeps Python's default)."""
    return returncode == 0 or (terminated and returncode == -signal.SIGTERM)


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this supervisor dies, so no service is left orphaned."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def nameko_argv(name: str) -> list[str]:
    info = SERVICES[name]
    nameko = str(Path(sys.executable).parent / "nameko")
    return [nameko, "run", "--config", str(info.config_path), info.entry]


def mail_sink_argv(folder: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lob_cli.main",
        "mail-sink",
        "--dir",
        str(folder),
        "--port",
        str(port),
    ]
