"""Sending email over SMTP (stdlib smtplib; green under eventlet)."""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import threading
import time
from datetime import datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from lob_common.timeutil import AMSTERDAM
from notifications.domain.texts import Email

HEADERS_POLICY = email_policy.default.clone(max_line_length=998)
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
        message = self.build(email, message_id)
        if limiter is not None:
            limiter.wait()
        try:
            reused = self._client is not None
            if self._client is None:
                self._client = self._connect()
            try:
                self._client.send_message(message)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                # the kept connection had been closed by the server before this message
                self._drop()
                self._client = self._connect()
                self._client.send_message(message)
        except (smtplib.SMTPException, OSError, EOFError) as exc:
            if not isinstance(exc, smtplib.SMTPRecipientsRefused):
                self._drop()  # after an error the session's state is unknown
            else:
                with contextlib.suppress(smtplib.SMTPException, OSError, EOFError):
                    self._client.rset()
            raise classify(exc) from None

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
