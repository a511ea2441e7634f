"""A minimal SMTP server (RFC 5321) with AUTH PLAIN / LOGIN (RFC 4954, RFC 4616) for tests.

It accepts mail on 127.0.0.1 and keeps it in memory as ``Message`` objects; nothing is relayed.
Enough of the protocol for ``smtplib.SMTP`` + ``login()`` + ``send_message()`` and for
hand-written sessions: EHLO/HELO, AUTH, MAIL, RCPT, DATA, RSET, NOOP, VRFY, QUIT. No STARTTLS,
PIPELINING or SMTPUTF8 (not advertised). Replies carry RFC 3463 enhanced status codes in the
text, as most servers do. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

# RFC 5321 §4.5.3.1.4/.6: a command line is at most 512 octets, a text line 1000; be generous.
MAX_COMMAND_LINE = 4096
MAX_DATA_LINE = 65536  # longer lines are read in pieces; only line starts matter for dots

STAGES = ("MAIL", "RCPT", "DATA")

# Default texts for injected failures (RFC 5321 §4.2.2-3 codes, RFC 3463 enhanced codes).
FAULT_TEXT = {
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.1 Mailbox unavailable, try again later",
    451: "4.3.0 Local error in processing, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.7.1 Requested action not taken: rejected",
    552: "5.3.4 Message size exceeds fixed maximum message size",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.7.0 Transaction failed",
}

_PATH_RE = re.compile(r"^(FROM|TO):\s*<([^<>]*)>\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Message:
    """One accepted message: the envelope, the bytes after dot-unstuffing, and their parse."""

    mail_from: str  # "" for the null reverse-path <>
    rcpt_tos: list[str]
    data: bytes  # as received, unstuffed; ends with the CRLF before the terminating "."
    parsed: EmailMessage  # ``data`` parsed with policy.default, line endings as "\n"
    authenticated_user: str | None


@dataclass
class _Fault:
    stage: str
    code: int
    remaining: int
    text: str


@dataclass
class _Session:
    helo: str | None = None
    esmtp: bool = False
    user: str | None = None
    mail_from: str | None = None
    rcpt_tos: list[str] = field(default_factory=list)

    def reset_transaction(self) -> None:
        self.mail_from, self.rcpt_tos = None, []


class _Closing(Exception):
    """Raised after a reply that ends the session (QUIT, 421)."""


class _Handler(socketserver.StreamRequestHandler):
    server: _Server
    timeout = 30  # idle sessions are dropped, as real servers do (RFC 5321 §4.5.3.2)

    def handle(self) -> None:
        fake = self.server.fake
        self.s = _Session()
        self.pending: str | None = None  # the transcript entry waiting for its reply code
        try:
            self.reply(220, f"{fake.hostname} ESMTP FakeSMTP ready")
            while True:
                line = self.read_line(MAX_COMMAND_LINE)
                if line is None:
                    self.reply(500, "5.5.6 Line too long")
                    continue
                text = line.decode("utf-8", errors="replace").rstrip("\r\n")
                verb, _, arg = text.partition(" ")
                verb = verb.upper()
                # The transcript shows AUTH without its credentials.
                self.pending = f"AUTH {arg.split(' ')[0].upper()}" if verb == "AUTH" else text
                command = getattr(self, f"smtp_{verb}", None)
                if command is None:
                    self.unknown(verb)
                else:
                    command(arg.strip())
        except (_Closing, ConnectionError, TimeoutError, OSError, EOFError):
            return

    # ---- I/O -------------------------------------------------------------------------------

    def read_line(self, limit: int) -> bytes | None:
        """One line including its ending; None if it was longer than ``limit`` (discarded)."""
        line = self.rfile.readline(limit + 1)
        if not line:
            raise EOFError
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = self.rfile.readline(limit)
            return None
        return line

    def reply(self, code: int, *lines: str, final: bool = True) -> int:
        """Send a (multi-line, RFC 5321 §4.2.1) reply: ``250-a``, ``250-b``, ``250 c``.

        A final reply completes the pending transcript entry, before it is sent, so a client
        that has read the reply also sees it in ``transcript``."""
        if final and self.pending is not None:
            self.server.fake._log(self.pending, code)
            self.pending = None
        out = [f"{code}-{text}" for text in lines[:-1]] + [f"{code} {lines[-1]}"]
        self.wfile.write(("\r\n".join(out) + "\r\n").encode("utf-8"))
        self.wfile.flush()
        return code

    def fault(self, stage: str) -> int | None:
        """Answer with an injected failure for ``stage`` if one is pending."""
        taken = self.server.fake._take_fault(stage)
        if taken is None:
            return None
        code, text = taken
        if stage != "RCPT":  # a refused recipient does not end the transaction (§3.3)
            self.s.reset_transaction()
        self.reply(code, text)
        if code == 421:  # RFC 5321 §3.8: 421 means the server closes the channel
            raise _Closing
        return code

    # ---- commands --------------------------------------------------------------------------

    def unknown(self, verb: str) -> int:
        if verb in {"STARTTLS", "EXPN", "TURN", "ETRN", "BDAT", "HELP"}:
            return self.reply(502, "5.5.1 Command not implemented")
        return self.reply(500, "5.5.2 Command unrecognized")

    def smtp_EHLO(self, arg: str) -> int:
        if not arg:
            return self.reply(501, "5.5.4 Syntax: EHLO domain")
        fake = self.server.fake
        self.s.helo, self.s.esmtp = arg, True
        self.s.reset_transaction()  # §4.1.4: EHLO resets like RSET
        lines = [f"{fake.hostname} greets {arg}"]
        if fake.auth_enabled:
            lines.append("AUTH PLAIN LOGIN")
        lines += [f"SIZE {fake.max_size}", "8BITMIME"]
        return self.reply(250, *lines)

    def smtp_HELO(self, arg: str) -> int:
        if not arg:
            return self.reply(501, "5.5.4 Syntax: HELO domain")
        self.s.helo, self.s.esmtp = arg, False
        self.s.reset_transaction()
        return self.reply(250, self.server.fake.hostname)

    def smtp_AUTH(self, arg: str) -> int:
        fake = self.server.fake
        if not fake.auth_enabled:
            return self.reply(502, "5.5.1 AUTH not available")
        if not self.s.esmtp:
            return self.reply(503, "5.5.1 Send EHLO first")
        if self.s.user is not None:  # RFC 4954 §4: only one successful AUTH per session
            return self.reply(503, "5.5.1 Already authenticated")
        if self.s.mail_from is not None:
            return self.reply(503, "5.5.1 AUTH not permitted during a mail transaction")
        mechanism, _, initial = arg.partition(" ")
        mechanism, initial = mechanism.upper(), initial.strip()
        try:
            if mechanism == "PLAIN":
                # RFC 4616: authzid NUL authcid NUL passwd; "=" is an empty initial response.
                response = self.decode(initial) if initial else self.challenge("")
                parts = response.split(b"\0")
                if len(parts) != 3:
                    return self.reply(501, "5.5.2 Malformed PLAIN response")
                username, password = parts[1], parts[2]
            elif mechanism == "LOGIN":
                # Not standardised (draft-murchison-sasl-login): prompts "Username:", "Password:".
                username = self.decode(initial) if initial else self.challenge("Username:")
                password = self.challenge("Password:")
            else:
                return self.reply(504, "5.5.4 Unrecognized authentication type")
        except _Cancelled:
            return self.reply(501, "5.7.0 Authentication cancelled")
        except ValueError:
            return self.reply(501, "5.5.2 Cannot decode response")
        user = username.decode("utf-8", errors="replace")
        if fake.check_credentials(user, password.decode("utf-8", errors="replace")):
            self.s.user = user
            return self.reply(235, "2.7.0 Authentication successful")
        return self.reply(535, "5.7.8 Authentication credentials invalid")

    def challenge(self, prompt: str) -> bytes:
        self.reply(334, base64.b64encode(prompt.encode()).decode(), final=False)
        line = self.read_line(MAX_COMMAND_LINE)
        text = (line or b"").strip()
        if text == b"*":  # RFC 4954 §4: the client cancels
            raise _Cancelled
        return self.decode(text.decode("ascii", errors="replace"))

    @staticmethod
    def decode(text: str) -> bytes:
        if text == "=":
            return b""
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise ValueError(text) from None

    def smtp_MAIL(self, arg: str) -> int:
        fake = self.server.fake
        if self.s.helo is None:
            return self.reply(503, "5.5.1 Send HELO/EHLO first")
        if fake.require_auth and self.s.user is None:
            return self.reply(530, "5.7.0 Authentication required")  # RFC 4954 §6
        if self.s.mail_from is not None:
            return self.reply(503, "5.5.1 Sender already specified")
        m = _PATH_RE.match(arg)
        if not m or m.group(1).upper() != "FROM":
            return self.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
        params = m.group(3).split()
        if params and not self.s.esmtp:
            return self.reply(555, "5.5.4 Parameters need EHLO")
        for param in params:
            key, _, value = param.partition("=")
            key = key.upper()
            if key == "SIZE":  # RFC 1870
                if not value.isdigit():
                    return self.reply(501, "5.5.4 Bad SIZE parameter")
                if int(value) > fake.max_size:
                    return self.reply(552, "5.3.4 Message size exceeds fixed maximum message size")
            elif key == "BODY" and value.upper() in ("7BIT", "8BITMIME"):  # RFC 6152
                pass
            elif key == "AUTH":  # RFC 4954 §5; accepted and ignored
                pass
            else:
                return self.reply(555, f"5.5.4 Unsupported parameter {key}")
        injected = self.fault("MAIL")
        if injected is not None:
            return injected
        self.s.mail_from = m.group(2)
        return self.reply(250, "2.1.0 Sender OK")

    def smtp_RCPT(self, arg: str) -> int:
        if self.s.mail_from is None:
            return self.reply(503, "5.5.1 Need MAIL before RCPT")
        m = _PATH_RE.match(arg)
        if not m or m.group(1).upper() != "TO" or not m.group(2):
            return self.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
        if m.group(3).strip():
            return self.reply(555, "5.5.4 RCPT parameters not supported")
        injected = self.fault("RCPT")
        if injected is not None:
            return injected
        self.s.rcpt_tos.append(m.group(2))
        return self.reply(250, "2.1.5 Recipient OK")

    def smtp_DATA(self, arg: str) -> int:
        fake = self.server.fake
        if arg:
            return self.reply(501, "5.5.4 Syntax: DATA")
        if self.s.mail_from is None:
            return self.reply(503, "5.5.1 Need MAIL command")
        if not self.s.rcpt_tos:
            return self.reply(554, "5.5.1 No valid recipients")  # §3.3 allows 503 or 554
        self.reply(354, "End data with <CR><LF>.<CR><LF>")
        self.pending = "."  # the end of the message gets its own reply (and entry)
        chunks: list[bytes] = []
        size, at_line_start = 0, True
        while True:
            line = self.rfile.readline(MAX_DATA_LINE)
            if not line:
                raise EOFError  # the client went away mid-message: no delivery
            if at_line_start and line in (b".\r\n", b".\n"):
                break
            if at_line_start and line.startswith(b"."):
                line = line[1:]  # §4.5.2 transparency: remove the stuffed dot
            at_line_start = line.endswith(b"\n")
            size += len(line)
            if size <= fake.max_size:
                chunks.append(line)
        mail_from, rcpt_tos = self.s.mail_from, list(self.s.rcpt_tos)
        self.s.reset_transaction()
        if size > fake.max_size:
            return self.reply(552, "5.3.4 Message size exceeds fixed maximum message size")
        injected = self.fault("DATA")
        if injected is not None:
            return injected
        data = b"".join(chunks)
        # Wire format is CRLF (RFC 5322); the email package's native form is "\n", so parse
        # with "\n" to make get_content() give back what the sender set. ``data`` stays raw.
        parsed = BytesParser(policy=default_policy).parsebytes(data.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, EmailMessage)
        queue_id = fake._deliver(Message(mail_from, rcpt_tos, data, parsed, self.s.user))
        return self.reply(250, f"2.0.0 OK: queued as {queue_id}")

    def smtp_RSET(self, arg: str) -> int:
        self.s.reset_transaction()
        return self.reply(250, "2.0.0 OK")

    def smtp_NOOP(self, arg: str) -> int:
        return self.reply(250, "2.0.0 OK")

    def smtp_VRFY(self, arg: str) -> int:
        return self.reply(252, "2.5.2 Cannot VRFY user, but will accept message")

    def smtp_QUIT(self, arg: str) -> int:
        self.reply(221, "2.0.0 Bye")
        raise _Closing


class _Cancelled(Exception):
    pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, fake: FakeSMTP, port: int) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.fake._cond:
            self.fake._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.fake._cond:
            self.fake._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # clients that hang up are not errors
        super().handle_error(request, client_address)


class FakeSMTP:
    """An in-memory SMTP server. AUTH is advertised only when ``username`` is set.

    ``transcript`` lists ``(command, reply code)`` per command (AUTH arguments and message
    content left out; a finished DATA shows as ``(".", code)``).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
        require_auth: bool = False,
        max_size: int = 10 * 1024 * 1024,
        hostname: str = "fake-smtp.localhost",
    ) -> None:
        if require_auth and username is None:
            raise ValueError("require_auth needs a username and password")
        self.username, self.password = username, password
        self.require_auth = require_auth
        self.max_size = max_size
        self.hostname = hostname
        self._cond = threading.Condition()
        self._messages: list[Message] = []
        self._faults: list[_Fault] = []
        self._transcript: list[tuple[str, int]] = []
        self._conns: set[socket.socket] = set()
        self._ids = itertools.count(1)
        self._server = _Server(self, port)
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> FakeSMTP:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
            name="smtp-fake",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        with self._cond:
            conns = list(self._conns)
        for conn in conns:  # open sessions would otherwise wait for their idle timeout
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()

    def __enter__(self) -> FakeSMTP:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test API --------------------------------------------------------------------------

    @property
    def auth_enabled(self) -> bool:
        return self.username is not None

    @property
    def messages(self) -> list[Message]:
        with self._cond:
            return list(self._messages)

    @property
    def transcript(self) -> list[tuple[str, int]]:
        with self._cond:
            return list(self._transcript)

    def wait_for(
        self, predicate: Callable[[Message], bool] = lambda m: True, timeout: float = 5.0
    ) -> Message:
        """The first accepted message matching ``predicate``; ``AssertionError`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self._messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [(m.mail_from, m.rcpt_tos, m.parsed["subject"]) for m in self._messages]
                    raise AssertionError(f"no matching message within {timeout}s; got {got}")
                self._cond.wait(remaining)

    def fail_next(
        self, code: int, count: int = 1, *, stage: str = "MAIL", message: str | None = None
    ) -> None:
        """Answer the next ``count`` MAIL FROM commands (or RCPT TO, or end of DATA, per
        ``stage``) with ``code``: 4xx transient (451, 452; 421 also closes the session), 5xx
        permanent (550, 552, 554). Faults are used in the order they were added."""
        stage = stage.upper()
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        if not 400 <= code <= 599 or count < 1:
            raise ValueError("code must be 4xx or 5xx and count at least 1")
        text = message or FAULT_TEXT.get(code, f"{code // 100}.0.0 Injected failure")
        with self._cond:
            self._faults.append(_Fault(stage, code, count, text))

    def reset(self) -> None:
        """Forget messages, transcript and pending faults (open sessions stay open)."""
        with self._cond:
            self._messages.clear()
            self._transcript.clear()
            self._faults.clear()

    def check_credentials(self, username: str, password: str) -> bool:
        if self.username is None or self.password is None:
            return False
        ok_user = hmac.compare_digest(username.encode(), self.username.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        return ok_user and ok_password

    # ---- used by sessions ------------------------------------------------------------------

    def _take_fault(self, stage: str) -> tuple[int, str] | None:
        with self._cond:
            for fault in self._faults:
                if fault.stage == stage:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.code, fault.text
        return None

    def _deliver(self, message: Message) -> str:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()
            return f"FAKE{next(self._ids):06d}"

    def _log(self, command: str, code: int) -> None:
        with self._cond:
            self._transcript.append((command, code))
