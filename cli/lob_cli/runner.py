"""`lob run`: the whole system in the foreground for a newcomer or a developer.

Before anything is touched it checks that the broker answers, that no other `lob run` uses the
same var/ (a lock file) and that every port is free, and says so in one line otherwise. Then it
migrates, seeds the demo season and starts the local SMTP sink and the four services as separate
`nameko run` processes under supervisord, which restarts any that dies (see Supervisor).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from kombu import Connection
from supervisor.xmlrpc import SupervisorTransport

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


class RunRefused(RuntimeError):
    """`lob run` cannot start here; the message says why in one line."""


def claim_var(var_dir: Path) -> Any:
    """Hold var/lob-run.lock for as long as this run lasts (one `lob run` per var/).

    An exclusive flock, released by the kernel when the process ends, however it ends: a lock
    file left behind by a killed run never blocks the next one.
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    handle = open(var_dir / "lob-run.lock", "a+")  # noqa: SIM115 - held open for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise RunRefused(
            f"another `lob run` (pid {holder}) is using {var_dir}; stop it first (Ctrl-C there)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def check_ports_free(ports: dict[str, tuple[str, int]]) -> None:
    """Refuse to start when a port we need is taken, before touching any database."""
    for what, (host, port) in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            try:
                probe.bind((host, port))
            except OSError:
                raise RunRefused(
                    f"port {port} ({what}) is in use by another program; stop it, or give "
                    f"{what} another address (see README, Local addresses)"
                ) from None


# supervisord's own log lines, as written to its stdout (supervisor 4.3, pinned).
_SUPERVISORD_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<level>[A-Z]+) (?P<message>.*)$"
)
_EXITED = re.compile(r"^exited: (?P<name>\S+) \((?P<how>.*); not expected\)$")
# What supervisord says at every start as root and with a socket in var/: nothing to act on.
_EXPECTED_CRITICAL = ("Server 'unix_http_server' running", "Supervisor is running as root")
_STOPPED = re.compile(r"^stopped: (?P<name>\S+) \((?P<how>.*)\)$")


class Supervisor:
    """The processes of `lob run` under supervisord (the supervisor package, pinned).

    supervisord restarts a child that dies: at once if it had been running, with a back-off
    that grows by a second per failed start if it keeps dying at start (it never gives up while
    the run lasts). `lob run` shows everyone's output, turns supervisord's notice of a death into
    one line ("... died (...); restarting it"), and on Ctrl-C stops the children together
    (SIGTERM, SIGKILL after STOP_GRACE_SECONDS), naming any that did not stop cleanly.
    LOB_RUN_DEBUG=1 shows supervisord's own log lines too.
    """

    def __init__(self, var_dir: Path, env: dict[str, str], log_dir: Path | None = None) -> None:
        self.var_dir = var_dir
        self.env = env
        # None: every child's output on this process's stdout (`lob run`); a folder: one
        # <name>.log per child there (the fault tests, which read them when something fails).
        self.log_dir = log_dir
        self.programs: list[tuple[str, list[str]]] = []
        self.colour = sys.stdout.isatty()
        self._print_lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._pump_thread: threading.Thread | None = None
        self._stop_lines: dict[str, str] = {}
        self._last_death: dict[str, str] = {}

    def add(self, name: str, argv: list[str]) -> None:
        self.programs.append((name, argv))

    def say(self, name: str, line: str) -> None:
        prefix = f"{name:>13} | "
        if self.colour:
            prefix = f"\033[{COLOURS.get(name, '0')}m{prefix}\033[0m"
        with self._print_lock:
            sys.stdout.write(prefix + line.rstrip("\n") + "\n")
            sys.stdout.flush()

    @property
    def socket_path(self) -> Path:
        return self.var_dir / "supervisor.sock"

    def config(self) -> str:
        grace = _grace()
        sections = [
            "[supervisord]",
            "nodaemon=true",
            "logfile=/dev/null",  # nodaemon: supervisord logs to stdout as well
            "logfile_maxbytes=0",
            "loglevel=info",
            f"pidfile={self.var_dir / 'supervisord.pid'}",
            f"childlogdir={self.var_dir}",
            "",
            "[unix_http_server]",
            f"file={self.socket_path}",
            "chmod=0700",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        ]
        # One group: supervisord stops a group's processes all at once, but group after group
        # (each program would be a group of its own: 1-3 s each, one after the other).
        sections += ["", "[group:lob]", "programs=" + ",".join(name for name, _ in self.programs)]
        for name, argv in self.programs:
            sections += [
                "",
                f"[program:{name}]",
                f"command={shlex.join(argv)}",
                "autorestart=true",
                "startsecs=2",
                "startretries=1000000",  # back-off grows 1 s per failed start; never gives up
                "stopsignal=TERM",
                f"stopwaitsecs={grace}",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={self.log_dir / f'{name}.log' if self.log_dir else '/dev/stdout'}",
                "stdout_logfile_maxbytes=0",
            ]
        return "\n".join(sections) + "\n"

    def start(self) -> None:
        path = self.var_dir / "supervisord.conf"
        path.write_text(self.config())
        self._process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(path)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C reaches `lob run` only, which stops in order
            preexec_fn=_die_with_parent,
        )
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            if not line.strip() or _noise(line):
                continue
            found = _SUPERVISORD_LINE.match(line.rstrip("\n"))
            if found is None:
                sys.stdout.write(line)  # a service's own log line (it names the service)
                sys.stdout.flush()
                continue
            self._supervisord_said(found["level"], found["message"])

    def _supervisord_said(self, level: str, message: str) -> None:
        if os.environ.get("LOB_RUN_DEBUG"):
            self.say("lob", f"DEBUG {time.strftime('%T')} {level} {message}")
        if died := _EXITED.match(message):
            self._last_death[died["name"]] = died["how"]
            self.say("lob", f"{died['name']} died ({died['how']}); restarting it")
        elif stopped := _STOPPED.match(message):
            self._stop_lines[stopped["name"]] = stopped["how"]
        elif level in ("ERRO", "CRIT") and not message.startswith(_EXPECTED_CRITICAL):
            self.say("lob", f"supervisord: {message}")

    def rpc(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def wait_until_running(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RunRefused("supervisord exited at start; see the lines above")
            try:
                if self.rpc().getState()["statename"] == "RUNNING":
                    return
            except (OSError, xmlrpc.client.Fault):
                pass
            time.sleep(0.1)
        raise RunRefused(f"supervisord did not start within {timeout:g} s")

    def wait(self) -> int:
        """Run until Ctrl-C (SIGINT) or SIGTERM, then stop everything."""
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            if self._process is not None and self._process.poll() is not None:
                self.say("lob", f"supervisord exited with code {self._process.returncode}")
                return 1
            stop.wait(0.5)
        return self.stop()

    def stop(self) -> int:
        """Stop every child: 0 only when each one exited cleanly within the grace period, else 1.

        A child that had to be killed, or that was failing when the run ended, makes `lob run`
        fail with one line naming it, so a script or CI job sees the unclean stop instead of an
        "all stopped" that hides it.
        """
        self.say("lob", "stopping...")
        problems: list[str] = []
        try:
            supervisor = self.rpc()
            failing = {
                info["name"]: info["statename"]
                for info in supervisor.getAllProcessInfo()
                if info["statename"] in ("BACKOFF", "FATAL", "EXITED")
            }
            supervisor.shutdown()  # stops every child at once (stopAllProcesses: one by one)
        except (OSError, xmlrpc.client.Fault) as exc:
            self.say("lob", f"supervisord did not answer ({exc}); ending it")
            failing = {}
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()
        if self._process is not None:
            try:
                self._process.wait(timeout=STOP_GRACE_SECONDS * len(self.programs) + 10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
                problems.append("supervisord had to be killed")
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=5)
        for name, _ in self.programs:
            how = self._stop_lines.get(name, "")
            if name in failing:
                problems.append(f"{name} was failing ({self._last_death.get(name, 'unknown')})")
            elif "SIGKILL" in how:
                problems.append(f"{name} was killed after {_grace()}s")
            elif how not in ("", "exit status 0", "terminated by SIGTERM"):  # SIGTERM: ours
                problems.append(f"{name} stopped with {how}")
        if problems:
            self.say("lob", "stopped, but not cleanly: " + "; ".join(problems))
            return 1
        self.say("lob", "all stopped.")
        return 0


def _grace() -> int:
    """supervisord counts whole seconds."""
    return max(1, math.ceil(STOP_GRACE_SECONDS))


def _noise(line: str) -> bool:
    """eventlet's deprecation notice, printed by every service at start."""
    return "EventletDeprecationWarning" in line or line.startswith(
        (
            "Eventlet is deprecated",
            "we strongly recommend",
            "If you are already",
            "framework.  For more",
            "https://eventlet",
            "  import eventlet",
        )
    )


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this process dies, so no service is left orphaned."""
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
