"""`lob mail-sink` saves exactly the bytes aiosmtpd saved (its `original_content`), for the
messages notifications sends and for the odd ones (dot-stuffed lines, an empty body, 8-bit
data, several messages and an RSET on one connection)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from lob_cli.mailsink import start_sink, unstuff
from lob_testing import free_port


class _AiosmtpdSink:
    """The sink as it was: aiosmtpd, saving `original_content`."""

    def __init__(self) -> None:
        self.saved: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.saved.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def _mail(subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "LOB regio Eem <lob@regio-eem.example>"
    message["To"] = "pupil@school.example.nl"
    message["Subject"] = subject
    message.set_content(body)
    message.add_attachment(b"BEGIN:VCALENDAR\r\n.\r\nEND:VCALENDAR\r\n", "text", "calendar")
    return message


def _raw(subject: str, body: str) -> bytes:
    return _mail(subject, body).as_bytes(policy=SMTP)  # once: the boundary is drawn here


PLAIN = _raw("Je aanmelding", "Beste leerling,\n" * 40)
MESSAGES = [
    ("plain", PLAIN, ["pupil@school.example.nl"]),
    ("dots", _raw("Punten", ".\n..\n.begin\nmid . dot\n.\n"), ["pupil@school.example.nl"]),
    ("8bit", "Subject: é\r\n\r\nDag é\r\n".encode(), ["c@d.nl"]),
    ("empty", b"", ["c@d.nl", "e@f.nl"]),
    ("bare", b"x", ["c@d.nl"]),
    ("leading dot", b".\r\n.x\r\n", ["c@d.nl"]),
    ("longest line", b"y" * 999 + b"\r\n", ["c@d.nl"]),
]
TOO_LONG = b"z" * 1000 + b"\r\n"


def _send_all(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for _, raw, recipients in MESSAGES:
            client.sendmail("lob@regio-eem.example", recipients, raw)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("lob@regio-eem.example", ["c@d.nl"], TOO_LONG)
        assert refused.value.smtp_code == 500
        client.rset()
        client.noop()
        assert client.rcpt("c@d.nl")[0] == 503  # RCPT before MAIL: refused
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:  # a second connection
        client.sendmail("lob@regio-eem.example", ["x@y.nl"], PLAIN)


def test_the_sink_saves_what_aiosmtpd_saved(tmp_path: Path):
    reference = _AiosmtpdSink()
    port = free_port()
    controller = Controller(reference, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        _send_all(port)
    finally:
        controller.stop()

    port = free_port()
    sink = start_sink(tmp_path / "mail", port=port)
    try:
        _send_all(port)
    finally:
        sink.stop()
    saved = [path.read_bytes() for path in sorted((tmp_path / "mail").glob("*.eml"))]

    assert len(reference.saved) == len(MESSAGES) + 1
    # The messages carry their own Date and boundary: compare what each sink received.
    assert saved == reference.saved
    assert not list((tmp_path / "mail").glob(".*.tmp"))


def test_unstuffing_removes_one_leading_dot_per_line():
    assert unstuff(b"..\r\n.x\r\nx.\r\n...\r\n") == b".\r\nx\r\nx.\r\n..\r\n"
    assert unstuff(b"") == b""
