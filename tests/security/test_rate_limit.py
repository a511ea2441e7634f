"""The intake's per-address limit on wasted requests (refused or duplicate; a new, correctly
signed event is never counted or refused), and which address a request comes from."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from frontdesk.conf import ConfigError
from frontdesk.intake import throttling
from frontdesk.intake.models import Event, IntakeLog
from frontdesk.intake.throttling import parse_networks, parse_rate

from .. import stripe_events as se
from ..conftest import signed_post

CLIENT = "203.0.113.7"


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    throttling.reset()
    yield
    throttling.reset()


def product_event() -> dict[str, Any]:
    return se.event("product.created", se.fixture("product"))


def post(client: Any, remote: str = CLIENT, **extra: Any) -> Any:
    """A new, correctly signed event."""
    return signed_post(client, product_event(), REMOTE_ADDR=remote, **extra)


def bad(client: Any, remote: str = CLIENT, **extra: Any) -> Any:
    """A request the intake refuses (no signature)."""
    return client.post("/webhooks/stripe", data=b"{}", content_type="application/json", REMOTE_ADDR=remote, **extra)


# --- Configuration -------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "rate"), [
    ("3000/60", (3000, 60)), (" 10/1 ", (10, 1)), ("", (3000, 60)),
    ("off", None), ("OFF", None), ("0/60", None),
])
def test_it_reads_a_rate_or_off(raw: str, rate: tuple[int, int] | None) -> None:
    assert parse_rate(raw) == rate


@pytest.mark.parametrize("raw", ["lots", "10", "10/0", "-1/60", "10/1.5", "1e3/60", "10/-5", "/60"])
def test_it_names_the_variable_for_a_bad_rate(raw: str) -> None:
    with pytest.raises(ConfigError, match="FRONTDESK_INTAKE_RATE_LIMIT"):
        parse_rate(raw)


def test_it_reads_trusted_proxies_and_names_a_bad_one() -> None:
    assert [str(n) for n in parse_networks(" 127.0.0.1, 10.0.0.0/8,,::1 ")] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert parse_networks("") == ()
    with pytest.raises(ConfigError, match="FRONTDESK_TRUSTED_PROXIES: 'proxy.local'"):
        parse_networks("10.0.0.1,proxy.local")


# --- The limit -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_it_answers_429_with_retry_after_and_logs_it(client: Any, settings: Any) -> None:
    settings.INTAKE_RATE_LIMIT = (3, 60)
    assert [bad(client).status_code for _ in range(3)] == [400, 400, 400]
    payload = product_event()
    response = signed_post(client, payload, REMOTE_ADDR=CLIENT)
    assert response.status_code == 429
    assert response.json() == {"error": "rate_limited"}
    assert 1 <= int(response["Retry-After"]) <= 60
    assert not Event.objects.filter(event_id=payload["id"]).exists()  # the body was not even read
    log = IntakeLog.objects.order_by("-pk").first()
    assert (log.status_code, log.reason, log.source_ip, log.event_id) == (429, "rate_limited", CLIENT, "")


@pytest.mark.django_db
def test_new_signed_events_are_never_counted_or_refused(client: Any, settings: Any) -> None:
    # Stripe's backlog after an outage arrives as a burst from a few addresses.
    settings.INTAKE_RATE_LIMIT = (2, 60)
    assert {post(client).status_code for _ in range(10)} == {200}
    assert [bad(client).status_code for _ in range(3)] == [400, 400, 429]
    assert post(client).status_code == 429  # once over the limit, the address waits like any other


@pytest.mark.django_db
def test_refused_requests_of_every_kind_count(client: Any, settings: Any) -> None:
    settings.INTAKE_RATE_LIMIT = (3, 60)
    assert signed_post(client, product_event(), secrets=["whsec_wrong"], REMOTE_ADDR=CLIENT).status_code == 400
    assert signed_post(client, product_event(), timestamp=int(time.time()) - 3600,
                       REMOTE_ADDR=CLIENT).status_code == 400
    assert client.post("/webhooks/stripe", data=b"x" * (300 * 1024), content_type="application/json",
                       REMOTE_ADDR=CLIENT).status_code == 413
    assert post(client).status_code == 429


@pytest.mark.django_db
def test_duplicates_count(client: Any, settings: Any) -> None:
    settings.INTAKE_RATE_LIMIT = (2, 60)
    payload = product_event()
    answers = [signed_post(client, payload, REMOTE_ADDR=CLIENT) for _ in range(3)]
    assert [a.json()["status"] for a in answers] == ["ignored", "duplicate", "duplicate"]
    assert post(client).status_code == 429


@pytest.mark.django_db
def test_it_limits_each_address_on_its_own(client: Any, settings: Any) -> None:
    settings.INTAKE_RATE_LIMIT = (1, 60)
    assert bad(client, "203.0.113.7").status_code == 400
    assert bad(client, "203.0.113.7").status_code == 429
    assert bad(client, "203.0.113.8").status_code == 400
    assert bad(client, "::ffff:203.0.113.8").status_code == 429       # the same IPv4 client
    assert bad(client, "2001:db8:1:2::1").status_code == 400
    assert bad(client, "2001:db8:1:2:ffff::9").status_code == 429     # same /64
    assert bad(client, "2001:db8:1:3::1").status_code == 400


@pytest.mark.django_db
def test_the_window_moves_on(client: Any, settings: Any) -> None:
    settings.INTAKE_RATE_LIMIT = (2, 1)
    assert [bad(client).status_code for _ in range(3)] == [400, 400, 429]
    time.sleep(1.1)
    assert post(client).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("rate", [None, parse_rate("off"), parse_rate("0/60")])
def test_it_can_be_turned_off(client: Any, settings: Any, rate: Any) -> None:
    settings.INTAKE_RATE_LIMIT = rate
    assert {bad(client).status_code for _ in range(30)} == {400}


@pytest.mark.django_db
def test_it_falls_back_to_the_environment_when_settings_lack_it(client: Any, settings: Any,
                                                                  monkeypatch: Any) -> None:
    del settings.INTAKE_RATE_LIMIT  # a settings module without the lines
    monkeypatch.setenv("FRONTDESK_INTAKE_RATE_LIMIT", "1/60")
    assert [bad(client).status_code for _ in range(2)] == [400, 429]
    monkeypatch.setenv("FRONTDESK_INTAKE_RATE_LIMIT", "off")
    assert bad(client).status_code == 400


# --- Which address ------------------------------------------------------------------------

PROXY = "10.0.0.5"


def source_of(client: Any, settings: Any, remote: str, forwarded: str | None, proxies: str) -> str | None:
    settings.INTAKE_RATE_LIMIT = None
    settings.TRUSTED_PROXIES = parse_networks(proxies)
    extra = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    client.post("/webhooks/stripe", data=b"{}", content_type="application/json", REMOTE_ADDR=remote, **extra)
    return IntakeLog.objects.order_by("-pk").values_list("source_ip", flat=True).first()


@pytest.mark.django_db
@pytest.mark.parametrize(("remote", "forwarded", "proxies", "source"), [
    (CLIENT, None, "", CLIENT),
    (CLIENT, "198.51.100.1", "", CLIENT),                      # no trusted proxy: header ignored
    (CLIENT, "198.51.100.1", "10.0.0.0/8", CLIENT),            # not from a trusted proxy: ignored
    (PROXY, None, "10.0.0.0/8", PROXY),                        # proxy without the header
    (PROXY, "198.51.100.1", "10.0.0.0/8", "198.51.100.1"),
    (PROXY, "1.1.1.1, 198.51.100.1", "10.0.0.0/8", "198.51.100.1"),          # left part is the client's
    (PROXY, "1.1.1.1, 198.51.100.1, 10.0.0.9", "10.0.0.0/8", "198.51.100.1"),  # two proxies
    (PROXY, "10.0.0.8, 10.0.0.9", "10.0.0.0/8", "10.0.0.8"),                  # all trusted: left-most
    (PROXY, "198.51.100.1, garbage", "10.0.0.0/8", PROXY),                     # garbled: stop there
    (PROXY, "garbage, 198.51.100.1", "10.0.0.0/8", "198.51.100.1"),
    (PROXY, "2001:db8::1", "10.0.0.0/8", "2001:db8::1"),
    ("::1", "198.51.100.1", "::1", "198.51.100.1"),
    ("::ffff:10.0.0.5", "198.51.100.1", "10.0.0.0/8", "198.51.100.1"),       # IPv4-mapped proxy
    ("fe80::1%eth0", None, "", "fe80::1"),
    ("not-an-ip", "198.51.100.1", "10.0.0.0/8", None),
    ("", None, "", None),
])
def test_it_logs_the_client_address(client: Any, settings: Any, remote: str, forwarded: str | None,
                                    proxies: str, source: str | None) -> None:
    assert source_of(client, settings, remote, forwarded, proxies) == source


@pytest.mark.django_db
def test_a_client_behind_the_proxy_cannot_escape_the_limit_by_forging_the_header(client: Any,
                                                                                    settings: Any) -> None:
    settings.INTAKE_RATE_LIMIT = (2, 60)
    settings.TRUSTED_PROXIES = parse_networks("10.0.0.0/8")
    statuses = [bad(client, PROXY, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, {CLIENT}").status_code for i in range(4)]
    assert statuses == [400, 400, 429, 429]
    assert bad(client, PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 400  # someone else


@pytest.mark.django_db
def test_a_request_without_an_address_is_not_limited(client: Any, settings: Any) -> None:
    # e.g. gunicorn on a Unix socket without a proxy header: one shared key would limit everyone.
    settings.INTAKE_RATE_LIMIT = (1, 60)
    assert {bad(client, "").status_code for _ in range(3)} == {400}


@pytest.mark.django_db
def test_the_log_row_of_a_throttled_request_holds_no_body(client: Any, settings: Any) -> None:
    settings.INTAKE_RATE_LIMIT = (1, 60)
    bad(client)
    response = client.post("/webhooks/stripe", data=json.dumps({"email": "x@example.com"}),
                           content_type="application/json", REMOTE_ADDR=CLIENT)
    assert response.status_code == 429
    row = IntakeLog.objects.order_by("-pk").values().first()
    assert "example.com" not in json.dumps(row, default=str)
