"""Sending email over SMTP (stdlib smtplib; green under eventlet)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from notifications.domain.texts import Email


class PermanentFailure(Exception):
    """The server refused the message for good (e.g. the address does not exist)."""


class Mailer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.host = config.get("SMTP_HOST") or "127.0.0.1"
        self.port = int(config.get("SMTP_PORT") or 1025)
        self.security = (config.get("SMTP_SECURITY") or "none").lower()
        self.username = config.get("SMTP_USERNAME") or None
        self.password = config.get("SMTP_PASSWORD") or None
        self.sender = config.get("MAIL_FROM") or "lob@localhost"
        if self.security not in ("none", "starttls", "ssl"):
            raise ValueError(f"SMTP_SECURITY must be none, starttls or ssl, not {self.security!r}")

    def build(self, email: Email, message_id: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Date"] = formatdate(localtime=False)
        # Stable per notification: a resend after a crash carries the same id, so mail systems
        # can recognise it as the same message.
        message["Message-ID"] = message_id
        message.set_content(email.text)
        for name, mime, content in email.attachments:
            maintype, _, subtype = mime.partition(";")[0].partition("/")
            params = dict(p.strip().split("=", 1) for p in mime.split(";")[1:] if "=" in p)
            message.add_attachment(
                content, maintype=maintype, subtype=subtype, filename=name, params=params
            )
        return message

    def send(self, email: Email, message_id: str) -> None:
        message = self.build(email, message_id)
        try:
            if self.security == "ssl":
                client = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=30, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=30)
            with client:
                if self.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise PermanentFailure(f"recipient refused ({codes})") from None
            raise
