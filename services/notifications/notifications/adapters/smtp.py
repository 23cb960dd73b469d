"""Sending email over SMTP (stdlib smtplib; green under eventlet)."""

from __future__ import annotations

import contextlib
import random
import re
import smtplib
import socket
import ssl
import sys
import threading
import time
from datetime import datetime
from email import contentmanager as _contentmanager
from email import generator as _generator
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from functools import lru_cache
from typing import Any

from lob_common.timeutil import AMSTERDAM
from notifications.domain.texts import Email

HEADERS_POLICY = email_policy.default.clone(max_line_length=998)
_BUILD_POLICY = email_policy.default  # what EmailMessage() encodes the parts with
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_ADDRESS = re.compile(r"<?[^\s<>@,;:\"'()\[\]]+@[^\s<>,;:\"'()\[\]]+>?")


def without_addresses(text: str) -> str:
    """A text with every e-mail address in it replaced, fit for a log line or `last_error`."""
    return _ADDRESS.sub("<address>", text)


class PermanentFailure(Exception):
    """The server refused the message for good (SMTP 5xx): trying again changes nothing."""


class TransientFailure(Exception):
    """The server said 'not now' (SMTP 4xx) or could not be reached: try again later."""


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {without_addresses(text)}".strip()


def classify(exc: BaseException) -> Exception:
    """An SMTP error as a Permanent- or TransientFailure whose text names no address.

    Every 5xx reply is permanent (recipient, sender or data refused), 4xx replies and connection
    trouble are transient."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        replies = "; ".join(sorted({_reply(c, r) for c, r in exc.recipients.values()}))
        kind = PermanentFailure if all(500 <= c < 600 for c in codes) else TransientFailure
        return kind(f"recipient refused: {replies}")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        kind = PermanentFailure if 500 <= exc.smtp_code < 600 else TransientFailure
        return kind(f"sender refused: {_reply(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = PermanentFailure if 500 <= exc.smtp_code < 600 else TransientFailure
        what = "data refused" if isinstance(exc, smtplib.SMTPDataError) else "refused"
        return kind(f"{what}: {_reply(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, (smtplib.SMTPException, OSError, socket.timeout, EOFError)):
        return TransientFailure(f"{type(exc).__name__}: {without_addresses(str(exc))}")
    return TransientFailure(f"{type(exc).__name__}: {without_addresses(str(exc))}")


class RateLimiter:
    """At most `rate` messages per second for the whole process (0: no limit), so a mass
    mailing does not get the region's domain blocked. A token bucket with a burst of one second."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now - 1.0)  # unused capacity is kept for at most a second
            self._next = slot + 1.0 / self.rate
        if slot > now:
            time.sleep(slot - now)


def _header(name: str, value: str) -> tuple[str, Any]:
    """One header line as EmailMessage writes it (the same policy parses and folds it, so a
    non-ASCII or overlong value comes out exactly as there), and its parsed value."""
    _, parsed = HEADERS_POLICY.header_store_parse(name, value)
    return HEADERS_POLICY.fold(name, parsed), parsed


# The sender and the subjects of a mailing repeat; addresses, dates and ids are not kept.
_repeated_header = lru_cache(maxsize=64)(_header)

# Values the policy writes back exactly as given, on one line (tests/unit/test_mime.py checks
# these patterns against _header): a plain address and our Message-IDs.
_PLAIN = {
    "To": re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"),
    "Message-ID": re.compile(r"<[A-Za-z0-9-]+@[A-Za-z0-9-]+>"),
}


def _unique_header(name: str, value: str) -> tuple[str, str]:
    """`_header` for a value of each mail (its address, its id): a plain one is written as it
    is, without the policy's parse (about 0.05 ms a header); anything else goes through it."""
    plain = _PLAIN.get(name)
    if plain is not None and len(value) < 900 and plain.fullmatch(value):
        return f"{name}: {value}\n", value
    return _header(name, value)


def _date_header(moment: datetime) -> str:
    """`_header("Date", format_datetime(moment))[0]`: the policy parses the date and writes it
    with format_datetime again, so the text stays as it is (test_mime.py checks)."""
    return f"Date: {format_datetime(moment)}\n"


def _text_part(text: str, subtype: str, mime_version: bool) -> str:
    # EmailMessage.set_content(text, cte="quoted-printable") and add_alternative(...): the body
    # is encoded by the same function, with the policy the message had then (lines of 76).
    _, body = _contentmanager._encode_text(text, "utf-8", "quoted-printable", _BUILD_POLICY)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\n'
        "Content-Transfer-Encoding: quoted-printable\n"
        + ("MIME-Version: 1.0\n" if mime_version else "")
        + "\n"
        + body
    )


def _boundary(text: str) -> str:
    """email.generator.Generator._make_boundary: the same random draw and the same check that
    no line of the text is the boundary, without compiling a new pattern when it is not in it."""
    boundary = "=" * 15 + _generator._fmt % random.randrange(sys.maxsize) + "=="
    candidate, counter = boundary, 0
    while f"--{candidate}" in text and re.search(
        "^--" + re.escape(candidate) + "(--)?$", text, re.MULTILINE
    ):
        candidate, counter = f"{boundary}.{counter}", counter + 1
    return candidate


def _multipart(subtype: str, parts: list[str], headers: str = "") -> str:
    # The generator's own boundary (random, checked against the parts' text) in its order: the
    # inner parts first, as it flattens them before their container.
    boundary = _boundary("\n".join(parts))
    body = f"--{boundary}\n" + "".join(
        ("" if index == 0 else f"\n--{boundary}\n") + part for index, part in enumerate(parts)
    )
    return (
        headers
        + f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n\n'
        + body
        + f"\n--{boundary}--\n"
    )


class Mailer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.host = config.get("SMTP_HOST") or "127.0.0.1"
        self.port = int(config.get("SMTP_PORT") or 1025)
        self.security = (config.get("SMTP_SECURITY") or "none").lower()
        self.username = config.get("SMTP_USERNAME") or None
        self.password = config.get("SMTP_PASSWORD") or None
        self.sender = config.get("MAIL_FROM") or "lob@localhost"
        self._client: smtplib.SMTP | None = None
        if self.security not in ("none", "starttls", "ssl"):
            raise ValueError(f"SMTP_SECURITY must be none, starttls or ssl, not {self.security!r}")

    def build(self, email: Email, message_id: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = email.to
        message["Subject"] = email.subject
        # Amsterdam time with its real offset (+0100/+0200), not '-0000'.
        message["Date"] = format_datetime(datetime.now(AMSTERDAM))
        # Stable per notification: a resend after a crash carries the same id, so mail systems
        # can recognise it as the same message.
        message["Message-ID"] = message_id
        message.set_content(email.text, cte="quoted-printable")  # lines of at most 76
        if email.html:
            message.add_alternative(email.html, subtype="html", cte="quoted-printable")
        for name, mime, content in email.attachments:
            maintype, _, subtype = mime.partition(";")[0].partition("/")
            params = dict(p.strip().split("=", 1) for p in mime.split(";")[1:] if "=" in p)
            message.add_attachment(
                content, maintype=maintype, subtype=subtype, filename=name, params=params
            )
        # Headers are written out up to RFC 5322's 998 characters: Python's folding at 78 starts
        # a long Subject on a line of its own, which mail programs show with a leading space.
        message.policy = HEADERS_POLICY
        return message

    def message_bytes(self, email: Email, message_id: str) -> tuple[bytes, str, list[str]] | None:
        """`build(email, message_id)` flattened with CRLF as `smtplib.send_message` sends it, with
        its envelope sender and recipients, without the email package's object model.

        Byte for byte what build + send_message give (tests/unit/test_mime.py compares them), at a
        fraction of the cost: the headers go through the same policy, the bodies through the
        same encoders, and the MIME structure (part headers, boundaries) is written directly.
        None where that shortcut does not apply (an attachment type or name with characters
        that need quoting, a non-ASCII address needing SMTPUTF8): then build + send_message."""
        attachments = []
        for name, mime, content in email.attachments:
            maintype, _, subtype = mime.partition(";")[0].partition("/")
            params = dict(p.strip().split("=", 1) for p in mime.split(";")[1:] if "=" in p)
            words = (name, maintype, subtype, *params, *params.values())
            if not all(_TOKEN.fullmatch(word) for word in words):
                return None
            # add_attachment's header order: a Content-Type with parameters was rewritten last
            kind = f"Content-Type: {maintype}/{subtype}" + "".join(
                f'; {key}="{value}"' for key, value in params.items()
            )
            lines = [
                "Content-Transfer-Encoding: base64",
                f'Content-Disposition: attachment; filename="{name}"',
            ]
            lines.insert(len(lines) if params else 0, kind)
            attachments.append(
                "\n".join(lines)
                + "\nMIME-Version: 1.0\n\n"
                + _contentmanager._encode_base64(content, _BUILD_POLICY.max_line_length)
            )
        sender_line, sender = _repeated_header("From", self.sender)
        to_line, to = _unique_header("To", email.to)
        from_address = getaddresses([sender])[0][1]
        recipients = [address for _, address in getaddresses([to])]
        if not "".join([from_address, *recipients]).isascii():
            return None
        headers = (
            sender_line
            + to_line
            + _repeated_header("Subject", email.subject)[0]
            + _date_header(datetime.now(AMSTERDAM))
            + _unique_header("Message-ID", message_id)[0]
        )
        text = _text_part(email.text, "plain", mime_version=not (email.html or attachments))
        body = (
            _multipart("alternative", [text, _text_part(email.html, "html", True)])
            if email.html
            else text
        )
        if attachments:
            message = _multipart("mixed", [body, *attachments], headers + "MIME-Version: 1.0\n")
        elif email.html:
            message = headers + "MIME-Version: 1.0\n" + body
        else:  # a single text part: its own headers follow the message's
            message = headers + body
        return message.replace("\n", "\r\n").encode("ascii"), from_address, recipients

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=30, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=30)
        with contextlib.suppress(OSError, AttributeError):  # no Nagle wait on the small commands
            client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if self.username:
            client.login(self.username, self.password or "")
        return client

    def send(self, email: Email, message_id: str, limiter: RateLimiter | None = None) -> None:
        """Hand the message to the SMTP server; raises Permanent- or TransientFailure.

        The connection stays open for the next message of this Mailer (a batch), `close()` ends
        it: one connection per message costs a TCP and SMTP handshake each time."""
        fast = self.message_bytes(email, message_id)
        message = self.build(email, message_id) if fast is None else None
        if limiter is not None:
            limiter.wait()
        try:
            reused = self._client is not None
            if self._client is None:
                self._client = self._connect()
            try:
                self._hand_over(fast, message)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                # the kept connection had been closed by the server before this message
                self._drop()
                self._client = self._connect()
                self._hand_over(fast, message)
        except (smtplib.SMTPException, OSError, EOFError) as exc:
            if not isinstance(exc, smtplib.SMTPRecipientsRefused):
                self._drop()  # after an error the session's state is unknown
            else:
                with contextlib.suppress(smtplib.SMTPException, OSError, EOFError):
                    self._client.rset()
            raise classify(exc) from None

    def _hand_over(
        self, fast: tuple[bytes, str, list[str]] | None, message: EmailMessage | None
    ) -> None:
        assert self._client is not None
        if fast is not None:
            raw, sender, recipients = fast
            self._client.sendmail(sender, recipients, raw)  # what send_message does with it
        else:
            self._client.send_message(message)

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError, EOFError):
                client.close()

    def close(self) -> None:
        """End the kept connection (QUIT); the messages it carried are delivered already."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError, EOFError):
                client.quit()
            client.close()
