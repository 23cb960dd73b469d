"""A local SMTP sink for development and tests: every message becomes an .eml file.

A person can open var/mail/*.eml in any mail program to see exactly what was sent.

The sink speaks the small part of SMTP a sending program needs (EHLO/HELO, MAIL, RCPT, DATA,
RSET, NOOP, QUIT) with the replies aiosmtpd gave, and saves each message's data as aiosmtpd's
`original_content` (dot-unstuffed, CRLF line ends). It reads the data as one block up to the
terminating "<CRLF>.<CRLF>" instead of line by line: aiosmtpd cost about 1.5 ms of CPU per mail,
which on the benchmarks' shared 2 cores was as much as a service's share. It never runs in
production (there the region's SMTP server takes the mail); cli/tests/test_mail_sink.py checks
that it saves the same bytes as aiosmtpd did.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from pathlib import Path

DATA_SIZE_LIMIT = 33554432  # aiosmtpd's default, advertised as SIZE
LINE_LENGTH_LIMIT = 1001  # aiosmtpd's: RFC 5321's 1000 octets, CRLF included (plus one)
_END = b"\r\n.\r\n"


class _SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counter = itertools.count(1)

    def save(self, content: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self.counter):05d}.eml"
        temporary = self.folder / f".{name}.tmp"
        temporary.write_bytes(content)
        temporary.rename(self.folder / name)  # appears whole, never half-written


def unstuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2: the first '.' of every line that starts with one was added by the
    sender. `data` ends with the CRLF before the terminating dot (or is empty)."""
    return (b"\r\n" + data).replace(b"\r\n.", b"\r\n")[2:]


class _Session(asyncio.Protocol):
    """One SMTP connection: commands line by line, the message data as one block."""

    def __init__(self, store: _SaveToFolder, hostname: str) -> None:
        self.store = store
        self.hostname = hostname
        self.buffer = b""
        self.in_data = False
        self.greeted = False
        self.sender: str | None = None
        self.recipients: list[str] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._reply(f"220 {self.hostname} LOB mail sink")

    def _reply(self, text: str) -> None:
        if self.transport is not None:
            self.transport.write(text.encode("ascii") + b"\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            if self.in_data:
                # The CRLF that ended the DATA command starts the terminator of an empty message.
                found = (b"\r\n" + self.buffer).find(_END)
                if found < 0:
                    return
                content, self.buffer = self.buffer[:found], self.buffer[found + 3 :]
                self.in_data = False
                self._message(content)
                continue
            line, separator, rest = self.buffer.partition(b"\r\n")
            if not separator:
                return
            self.buffer = rest
            self._command(line.decode("utf-8", "replace"))

    def _message(self, content: bytes) -> None:
        """The data as sent (dot-stuffed), up to the CRLF before the terminating dot."""
        if len(content) > DATA_SIZE_LIMIT:
            self._reply("552 Error: Too much mail data")
        elif max(map(len, content.split(b"\r\n"))) + 2 > LINE_LENGTH_LIMIT:
            self._reply("500 Line too long (see RFC5321 4.5.3.1.6)")
        else:
            self.store.save(unstuff(content))
            self._reply("250 Message accepted for delivery")
        self.sender, self.recipients = None, []

    def _command(self, line: str) -> None:
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb in ("EHLO", "HELO"):
            if not arg:
                self._reply(f"501 Syntax: {verb} hostname")
                return
            self.greeted = True
            self.sender, self.recipients = None, []
            if verb == "HELO":
                self._reply(f"250 {self.hostname}")
            else:
                for extension in (self.hostname, f"SIZE {DATA_SIZE_LIMIT}", "8BITMIME"):
                    self._reply(f"250-{extension}")
                self._reply("250 HELP")
        elif verb == "NOOP":
            self._reply("250 OK")
        elif verb == "QUIT":
            self._reply("221 Bye")
            if self.transport is not None:
                self.transport.close()
        elif verb == "RSET":
            self.sender, self.recipients = None, []
            self._reply("250 OK")
        elif not self.greeted and verb in ("MAIL", "RCPT", "DATA"):
            self._reply("503 Error: send HELO first")
        elif verb == "MAIL":
            if self.sender is not None:
                self._reply("503 Error: nested MAIL command")
            elif not arg.upper().startswith("FROM:"):
                self._reply("501 Syntax: MAIL FROM: <address>")
            else:
                self.sender = _address(arg[5:])
                self._reply("250 OK")
        elif verb == "RCPT":
            if self.sender is None:
                self._reply("503 Error: need MAIL command")
            elif not arg.upper().startswith("TO:"):
                self._reply("501 Syntax: RCPT TO: <address>")
            else:
                self.recipients.append(_address(arg[3:]))
                self._reply("250 OK")
        elif verb == "DATA":
            if not self.recipients:
                self._reply("503 Error: need RCPT command")
            elif arg:
                self._reply("501 Syntax: DATA")
            else:
                self.in_data = True
                self._reply("354 End data with <CR><LF>.<CR><LF>")
        else:
            self._reply(f'500 Error: command "{verb}" not recognized')


def _address(text: str) -> str:
    """The address of a MAIL FROM:/RCPT TO: argument, without its ESMTP parameters."""
    text = text.strip()
    if text.startswith("<"):
        return text[1 : text.find(">")] if ">" in text else text[1:]
    return text.split(" ", 1)[0]


class Sink:
    """The sink's server on a thread of its own (start, stop), as aiosmtpd's Controller was."""

    def __init__(self, folder: Path, host: str, port: int) -> None:
        self.store = _SaveToFolder(folder)
        self.host, self.port = host, port
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = None
        self.server: asyncio.base_events.Server | None = None

    def start(self) -> None:
        hostname = socket.getfqdn()
        self.server = self.loop.run_until_complete(
            self.loop.create_server(
                lambda: _Session(self.store, hostname), self.host, self.port, reuse_address=True
            )
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(timeout=5)


def start_sink(folder: Path, host: str = "127.0.0.1", port: int = 1025) -> Sink:
    sink = Sink(folder, host, port)
    sink.start()
    return sink
