"""The notification fakes: Slack webhook, SMTP server, Standard Webhooks receiver.

Exercised with real clients (httpx, smtplib, raw sockets). Run without Django:
``pytest tests/fakes/test_notify_fakes.py -p no:django``.
"""

from __future__ import annotations

import base64
import json
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest

from frontdesk.fakes.receiver import FakeWebhookReceiver, sign, verify
from frontdesk.fakes.slack import FakeSlack
from frontdesk.fakes.smtp import FakeSMTP


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One pooled client: a fresh ``httpx.post`` builds an SSL context each time (~40 ms)."""
    with httpx.Client(timeout=5) as client:
        yield client


# ================================================================== Slack


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def test_slack_accepts_text_and_answers_plain_ok(http: httpx.Client, slack: FakeSlack) -> None:
    assert slack.webhook_url == slack.url + "/services/T000/B000/XXXX"
    resp = http.post(slack.webhook_url, json={"text": "New member: ann@example.com"})
    assert (resp.status_code, resp.text) == (200, "ok")
    assert resp.headers["content-type"].startswith("text/plain")
    assert slack.messages == [{"text": "New member: ann@example.com"}]
    assert slack.calls[-1].changed


def test_slack_accepts_blocks_only_and_the_legacy_form_payload(
    http: httpx.Client, slack: FakeSlack
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    assert http.post(slack.webhook_url, json={"blocks": blocks}).text == "ok"
    form = http.post(slack.webhook_url, data={"payload": json.dumps({"text": "form"})})
    assert form.text == "ok"
    assert slack.messages == [{"blocks": blocks}, {"text": "form"}]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "no_text"),
        ({"text": ""}, "no_text"),
        ({"text": "", "blocks": []}, "no_text"),
        ({"text": 5}, "invalid_payload"),
        ([{"text": "a list"}], "invalid_payload"),
        ({"blocks": "nope"}, "invalid_blocks"),
        ({"blocks": [{"text": "no type"}]}, "invalid_blocks"),
    ],
)
def test_slack_rejects_bad_payloads(
    http: httpx.Client, slack: FakeSlack, body: object, code: str
) -> None:
    resp = http.post(slack.webhook_url, json=body)
    assert (resp.status_code, resp.text) == (400, code)
    assert slack.messages == []


def test_slack_rejects_malformed_json_as_invalid_payload(
    http: httpx.Client, slack: FakeSlack
) -> None:
    resp = http.post(slack.webhook_url, content=b"{nope",
                      headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.text) == (400, "invalid_payload")


def test_slack_unknown_webhook_path_is_no_service(http: httpx.Client) -> None:
    with FakeSlack(path="/services/TX/BX/secret") as slack:
        assert slack.webhook_url.endswith("/services/TX/BX/secret")
        for path in ("/services/T000/B000/XXXX", "/elsewhere"):
            resp = http.post(slack.url + path, json={"text": "x"})
            assert (resp.status_code, resp.text) == (404, "no_service")
        assert http.post(slack.webhook_url, json={"text": "x"}).text == "ok"


def test_slack_revoked_token_and_archived_channel(http: httpx.Client, slack: FakeSlack) -> None:
    slack.configure(token_revoked=True)
    resp = http.post(slack.webhook_url, json={"text": "x"})
    assert (resp.status_code, resp.text) == (403, "invalid_token")
    # The same over the control API, as a worker in another process would see it.
    http.post(slack.url + "/_fake/config", json={"token_revoked": False,
                                                  "channel_archived": True})
    resp = http.post(slack.webhook_url, json={"text": "x"})
    assert (resp.status_code, resp.text) == (410, "channel_is_archived")
    slack.reset()
    assert http.post(slack.webhook_url, json={"text": "x"}).status_code == 200
    assert http.post(slack.url + "/_fake/config", json={"webhook_path": "/x"}).status_code == 400


def test_slack_fault_injection(http: httpx.Client, slack: FakeSlack) -> None:
    slack.fail(500, count=1)
    slack.fail(429, count=1)
    slack.fail(429, retry_after=30, count=1)
    slack.fail(400, body="channel_not_found", count=1)
    first = http.post(slack.webhook_url, json={"text": "1"})
    assert (first.status_code, first.text) == (500, "rollup_error")
    second = http.post(slack.webhook_url, json={"text": "2"})
    assert (second.status_code, second.text, second.headers["retry-after"]) == (
        429, "rate_limited", "1")
    assert http.post(slack.webhook_url, json={"text": "3"}).headers["retry-after"] == "30"
    assert http.post(slack.webhook_url, json={"text": "4"}).text == "channel_not_found"
    assert http.post(slack.webhook_url, json={"text": "5"}).text == "ok"
    assert slack.messages == [{"text": "5"}]  # failed posts never reached the channel
    assert [c.fault for c in slack.calls] == ["status"] * 4 + [None]


def test_slack_rate_limit_answers_429_with_retry_after(http: httpx.Client) -> None:
    with FakeSlack(rate_limit=(1, 60.0)) as slack:
        assert http.post(slack.webhook_url, json={"text": "a"}).status_code == 200
        resp = http.post(slack.webhook_url, json={"text": "b"})
        assert (resp.status_code, resp.headers["retry-after"]) == (429, "1")
        assert slack.calls[-1].fault == "rate_limit"


def test_slack_wait_for_and_control_api(http: httpx.Client, slack: FakeSlack) -> None:
    def later() -> None:
        time.sleep(0.05)
        http.post(slack.webhook_url, json={"text": "ignored"})
        http.post(slack.webhook_url, json={"text": "payment failed for ann"})

    sender = threading.Thread(target=later)
    sender.start()
    found = slack.wait_for(lambda m: "payment failed" in m.get("text", ""), timeout=2)
    sender.join()
    assert found == {"text": "payment failed for ann"}
    assert http.get(slack.url + "/_fake/messages").json()["messages"][0] == {"text": "ignored"}
    with pytest.raises(AssertionError, match="no matching Slack message"):
        slack.wait_for(lambda m: m.get("text") == "never", timeout=0.05)
    http.post(slack.url + "/_fake/reset")
    assert slack.messages == []


# ================================================================== SMTP


def _email(subject: str = "Welcome", body: str = "Hello Ann\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Frontdesk <noreply@frontdesk.example>"
    msg["To"] = "ann@example.com"
    msg["Bcc"] = "audit@frontdesk.example"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


@pytest.fixture
def smtp() -> Iterator[FakeSMTP]:
    with FakeSMTP(username="mailer", password="s3cret") as fake:
        yield fake


def test_smtp_login_and_send_message(smtp: FakeSMTP) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("auth") and client.esmtp_features["auth"].split() == [
            "PLAIN", "LOGIN"]
        assert client.has_extn("size") and client.has_extn("8bitmime")
        assert not client.has_extn("starttls")
        client.login("mailer", "s3cret")
        refused = client.send_message(_email(body="Hi Ann,\nwelcome — café\n"))
    assert refused == {}
    (message,) = smtp.messages
    assert message.mail_from == "noreply@frontdesk.example"
    assert message.rcpt_tos == ["ann@example.com", "audit@frontdesk.example"]
    assert message.authenticated_user == "mailer"
    assert message.parsed["Subject"] == "Welcome"
    assert "Bcc" not in message.parsed  # smtplib strips it; it is envelope-only
    assert message.parsed.get_content() == "Hi Ann,\nwelcome — café\n"
    assert message.data.endswith(b"\r\n") and not message.data.endswith(b".\r\n")
    commands = [c.split(":")[0].split(" ")[0] for c, _ in smtp.transcript]
    assert commands == ["ehlo", "AUTH", "mail", "rcpt", "rcpt", "data", ".", "QUIT"]
    assert ("AUTH PLAIN", 235) in smtp.transcript
    assert all("s3cret" not in c and "bWFpbGVy" not in c for c, _ in smtp.transcript)


def test_smtp_dot_unstuffing(smtp: FakeSMTP) -> None:
    body = ".leading dot\n..two dots\n.\nend\n"
    with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as client:
        client.send_message(_email(body=body))  # smtplib stuffs the dots
    assert smtp.messages[0].parsed.get_content() == body


def test_smtp_without_credentials_does_not_advertise_auth() -> None:
    with FakeSMTP() as fake, smtplib.SMTP(fake.host, fake.port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            client.login("a", "b")
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: x\r\n\r\nbody\r\n")
    assert fake.messages[0].authenticated_user is None
    assert fake.messages[0].parsed["subject"] == "x"


def test_smtp_rejects_wrong_password_and_supports_auth_login(smtp: FakeSMTP) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
            client.login("mailer", "wrong")
        assert exc.value.smtp_code == 535
        # AUTH LOGIN without an initial response: "Username:" then "Password:" challenges.
        client.user, client.password = "mailer", "s3cret"
        code, _ = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        assert code == 235
        client.send_message(_email())
    assert smtp.messages[0].authenticated_user == "mailer"
    assert ("AUTH LOGIN", 235) in smtp.transcript


def test_smtp_require_auth() -> None:
    with FakeSMTP(username="u", password="p", require_auth=True) as fake:
        with smtplib.SMTP(fake.host, fake.port, timeout=5) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as exc:
                client.send_message(_email())
            assert exc.value.smtp_code == 530
            client.login("u", "p")
            client.send_message(_email())
        assert len(fake.messages) == 1


def test_smtp_fail_next_transient_then_permanent(smtp: FakeSMTP) -> None:
    smtp.fail_next(451)
    smtp.fail_next(550, count=2)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as client:
        client.login("mailer", "s3cret")
        codes = []
        for _ in range(3):
            with pytest.raises(smtplib.SMTPSenderRefused) as exc:
                client.send_message(_email())
            codes.append(exc.value.smtp_code)
        assert codes == [451, 550, 550]
        client.send_message(_email(subject="finally"))  # the same session recovers
    assert [m.parsed["subject"] for m in smtp.messages] == ["finally"]


def test_smtp_fail_next_421_closes_and_data_stage_rejects(smtp: FakeSMTP) -> None:
    smtp.fail_next(421)
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=5)
    with pytest.raises(smtplib.SMTPSenderRefused) as exc:
        client.send_message(_email())
    assert exc.value.smtp_code == 421
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()
    smtp.fail_next(554, stage="DATA", message="5.7.1 Spam detected")
    with smtplib.SMTP(smtp.host, smtp.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPDataError) as data_exc:
            client.send_message(_email())
        assert (data_exc.value.smtp_code, data_exc.value.smtp_error) == (
            554, b"5.7.1 Spam detected")
    assert smtp.messages == []
    with pytest.raises(ValueError):
        smtp.fail_next(250)


def test_smtp_size_limit() -> None:
    with FakeSMTP(max_size=200) as fake, smtplib.SMTP(fake.host, fake.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as exc:  # SIZE= on MAIL FROM
            client.send_message(_email(body="x" * 500))
        assert exc.value.smtp_code == 552


class _Raw:
    """A hand-driven SMTP session, for sequences smtplib never sends."""

    def __init__(self, fake: FakeSMTP) -> None:
        self.sock = socket.create_connection((fake.host, fake.port), timeout=5)
        self.file = self.sock.makefile("rb")
        self.greeting = self.read()

    def read(self) -> tuple[int, list[str]]:
        lines = []
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    def cmd(self, line: str) -> tuple[int, list[str]]:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.read()

    def code(self, line: str) -> int:
        return self.cmd(line)[0]


def test_smtp_protocol_sequences(smtp: FakeSMTP) -> None:
    raw = _Raw(smtp)
    assert raw.greeting[0] == 220
    assert raw.code("MAIL FROM:<a@example.com>") == 503  # no HELO yet
    assert raw.code("EHLO") == 501
    code, lines = raw.cmd("EHLO client.example")
    assert code == 250 and lines[1:] == ["AUTH PLAIN LOGIN", f"SIZE {smtp.max_size}", "8BITMIME"]
    assert raw.code("RCPT TO:<b@example.com>") == 503  # no MAIL yet
    assert raw.code("STARTTLS") == 502
    assert raw.code("WHATEVER") == 500
    assert raw.code("NOOP") == 250
    assert raw.code("MAIL FROM:<>") == 250  # null reverse-path (bounces)
    assert raw.code("MAIL FROM:<a@example.com>") == 503  # nested MAIL
    assert raw.code("DATA") == 554  # no recipients
    assert raw.code("RSET") == 250
    assert raw.code("MAIL FROM:<a@example.com> BODY=8BITMIME SIZE=10") == 250
    assert raw.code("RCPT TO:<b@example.com>") == 250
    assert raw.code("DATA") == 354
    raw.sock.sendall(b"Subject: raw\r\n\r\n..stuffed\r\nlast\r\n.\r\n")
    assert raw.read()[0] == 250
    assert raw.code("QUIT") == 221
    message = smtp.messages[0]
    assert (message.mail_from, message.data) == ("a@example.com",
                                                 b"Subject: raw\r\n\r\n.stuffed\r\nlast\r\n")
    assert message.authenticated_user is None


def test_smtp_auth_dialogues(smtp: FakeSMTP) -> None:
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    raw = _Raw(smtp)
    assert raw.code("AUTH PLAIN " + b64("\0mailer\0s3cret")) == 503  # EHLO first
    raw.cmd("EHLO client.example")
    assert raw.code("AUTH CRAM-MD5") == 504
    code, (prompt,) = raw.cmd("AUTH PLAIN")  # no initial response → empty challenge
    assert (code, prompt) == (334, "")
    assert raw.code("*") == 501  # cancelled
    assert raw.code("AUTH PLAIN not-base64!") == 501
    code, (prompt,) = raw.cmd("AUTH LOGIN " + b64("mailer"))
    assert (code, base64.b64decode(prompt)) == (334, b"Password:")
    assert raw.code(b64("s3cret")) == 235
    assert raw.code("AUTH PLAIN " + b64("\0mailer\0s3cret")) == 503  # already authenticated
    raw.code("QUIT")


def test_smtp_wait_for_reset_and_stop() -> None:
    fake = FakeSMTP().start()

    def later() -> None:
        time.sleep(0.05)
        with smtplib.SMTP(fake.host, fake.port, timeout=5) as client:
            client.send_message(_email(subject="late"))

    sender = threading.Thread(target=later)
    sender.start()
    assert fake.wait_for(lambda m: m.parsed["subject"] == "late", timeout=2).rcpt_tos[0] == (
        "ann@example.com")
    sender.join()
    with pytest.raises(AssertionError, match="no matching message"):
        fake.wait_for(lambda m: False, timeout=0.05)
    fake.reset()
    assert fake.messages == [] and fake.transcript == []
    idle = _Raw(fake)  # an open session must not keep stop() waiting
    fake.stop()
    assert idle.file.readline() == b""
    with pytest.raises(OSError):
        socket.create_connection((fake.host, fake.port), timeout=1)


# ================================================================== Standard Webhooks receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the spec's test-vector secret
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key, rotated out").decode()


def test_sign_matches_the_standard_webhooks_test_vector() -> None:
    body = b'{"test": 2432232314}'
    header = sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert header == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {"Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "Webhook-Timestamp": "1614265330",
               "Webhook-Signature": header}
    verify(SECRET, headers, body, now=1614265330 + 299)
    verify(SECRET.removeprefix("whsec_"), headers, body, now=1614265330)  # prefix optional
    with pytest.raises(ValueError, match="no matching signature"):
        verify(SECRET, headers, body + b" ", now=1614265330)  # tampered body
    with pytest.raises(ValueError, match="too old"):
        verify(SECRET, headers, body, now=1614265330 + 301)
    with pytest.raises(ValueError, match="too new"):
        verify(SECRET, headers, body, now=1614265330 - 301)
    with pytest.raises(ValueError, match="missing required headers"):
        verify(SECRET, {"webhook-id": "x"}, body)
    with pytest.raises(ValueError, match="invalid timestamp"):
        verify(SECRET, {**headers, "Webhook-Timestamp": "soon"}, body)
    with pytest.raises(ValueError, match="invalid secret"):
        verify("whsec_***", headers, body, now=1614265330)


def _signed(body: dict, *, msg_id: str = "msg_1", secret: str = SECRET,
            timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    return raw, {"webhook-id": msg_id, "webhook-timestamp": str(ts),
                 "webhook-signature": sign(secret, msg_id, ts, raw),
                 "content-type": "application/json"}


@pytest.fixture
def receiver() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver(SECRET) as fake:
        yield fake


def test_receiver_accepts_a_signed_delivery(
    http: httpx.Client, receiver: FakeWebhookReceiver
) -> None:
    raw, headers = _signed({"type": "member.joined", "data": {"email": "ann@example.com"}})
    resp = http.post(receiver.url + "/hooks/frontdesk", content=raw, headers=headers)
    assert (resp.status_code, resp.content) == (204, b"")
    (delivery,) = receiver.deliveries
    assert delivery == {
        "id": "msg_1", "timestamp": int(headers["webhook-timestamp"]),
        "body": {"type": "member.joined", "data": {"email": "ann@example.com"}},
        "verified": True, "error": None, "path": "/hooks/frontdesk",
    }


def test_receiver_accepts_any_matching_v1_signature(
    http: httpx.Client, receiver: FakeWebhookReceiver
) -> None:
    raw, headers = _signed({"n": 1})
    ts = int(headers["webhook-timestamp"])
    # Key rotation: the old key's signature first, plus an unknown scheme that is ignored.
    headers["webhook-signature"] = " ".join(
        [sign(OTHER_SECRET, "msg_1", ts, raw), "v1a,AAAA", headers["webhook-signature"]])
    assert http.post(receiver.url, content=raw, headers=headers).status_code == 204


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secret": OTHER_SECRET}, "no matching signature found"),
        ({"timestamp": int(time.time()) - 301}, "message timestamp too old"),
        ({"timestamp": int(time.time()) + 3600}, "message timestamp too new"),
    ],
)
def test_receiver_rejects_bad_signatures_and_stale_timestamps(
    http: httpx.Client, receiver: FakeWebhookReceiver, change: dict, reason: str
) -> None:
    raw, headers = _signed({"n": 1}, **change)
    resp = http.post(receiver.url + "/hook", content=raw, headers=headers)
    assert (resp.status_code, resp.json()) == (400, {"error": reason})
    (delivery,) = receiver.deliveries
    assert (delivery["verified"], delivery["error"], delivery["body"]) == (False, reason, {"n": 1})


def test_receiver_rejects_tampering_missing_headers_and_non_json(
    http: httpx.Client, receiver: FakeWebhookReceiver
) -> None:
    raw, headers = _signed({"amount": 100})
    tampered = http.post(receiver.url, content=raw.replace(b"100", b"999"), headers=headers)
    assert tampered.json() == {"error": "no matching signature found"}
    missing = http.post(receiver.url, json={"amount": 100})
    assert (missing.status_code, missing.json()) == (400, {"error": "missing required headers"})
    ts = int(time.time())
    not_json = http.post(receiver.url, content=b"{oops", headers={
        "webhook-id": "m", "webhook-timestamp": str(ts), "content-type": "application/json",
        "webhook-signature": sign(SECRET, "m", ts, b"{oops")})
    assert (not_json.status_code, not_json.json()) == (400, {"error": "body is not JSON"})
    assert receiver.deliveries[-1]["verified"] is True
    assert [d["verified"] for d in receiver.deliveries] == [False, False, True]


def test_receiver_faults_wait_for_and_control_api(
    http: httpx.Client, receiver: FakeWebhookReceiver
) -> None:
    receiver.fail(503, count=1)
    raw, headers = _signed({"attempt": 1}, msg_id="msg_retry")
    assert http.post(receiver.url, content=raw, headers=headers).status_code == 503
    assert receiver.deliveries == []  # the fault answered before the endpoint saw it

    def later() -> None:
        time.sleep(0.05)
        http.post(receiver.url, content=raw, headers=headers)  # the sender's retry

    sender = threading.Thread(target=later)
    sender.start()
    got = receiver.wait_for(lambda d: d["id"] == "msg_retry" and d["verified"], timeout=2)
    sender.join()
    assert got["body"] == {"attempt": 1}
    with pytest.raises(AssertionError, match="no matching delivery"):
        receiver.wait_for(lambda d: d["id"] == "nope", timeout=0.05)
    listed = http.get(receiver.url + "/_fake/deliveries").json()["deliveries"]
    assert [d["id"] for d in listed] == ["msg_retry"]
    # Rotate the secret at run time; the old signature no longer verifies.
    assert http.post(receiver.url + "/_fake/config", json={"secret": "bad!"}).status_code == 400
    receiver.configure(secret=OTHER_SECRET)
    assert http.post(receiver.url, content=raw, headers=headers).status_code == 400
    receiver.reset()
    assert receiver.secret == SECRET and receiver.deliveries == []


def test_receiver_needs_a_valid_secret() -> None:
    with pytest.raises(ValueError, match="invalid secret"):
        FakeWebhookReceiver("whsec_not base64")
