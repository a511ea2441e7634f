"""Who is calling, and whether they have sent too many requests that stored nothing new.

Only wasted requests count against an address: those refused (bad signature, stale timestamp,
malformed body, …) and duplicates of an event already stored. A correctly signed new event is
never counted or refused: Stripe delivers from a handful of addresses, and after an outage its
backlog arrives as one burst that a plain per-address limit would answer with 429s, delaying
real payments by minutes to hours. Once an address is over its limit, every request from it gets
a 429 before its body is read, so a flood of forgeries costs a log row each and nothing more.

The counts are a moving window per address held in this process's memory (the ``limits``
library): the intake must answer in milliseconds at high volume, so a database write per request
is too dear. Each web process counts on its own, so with N gunicorn workers an address may waste
up to N times ``FRONTDESK_INTAKE_RATE_LIMIT`` (docs/security.md). A request that is not counted
only reads the window (no write, no expiry timer), which keeps the check off the fast path.

Behind a reverse proxy every request comes from the proxy's address. With the proxy listed in
``FRONTDESK_TRUSTED_PROXIES``, the client is the right-most address of ``X-Forwarded-For`` that
is not a trusted proxy: the left part of that header is whatever the client chose to send.
"""

from __future__ import annotations

import ipaddress
import math
import os
import time
from functools import cache

from django.conf import settings
from django.http import HttpRequest
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from frontdesk.conf import ConfigError

RATE_VARIABLE = "FRONTDESK_INTAKE_RATE_LIMIT"
PROXIES_VARIABLE = "FRONTDESK_TRUSTED_PROXIES"
DEFAULT_RATE = "3000/60"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Rate = tuple[int, int]


def parse_rate(raw: str, name: str = RATE_VARIABLE) -> Rate | None:
    """``REQUESTS/SECONDS`` in whole seconds; None (no limit) for ``off`` or ``0/SECONDS``."""
    value = raw.strip().lower() or DEFAULT_RATE
    if value == "off":
        return None
    count, sep, seconds = value.partition("/")
    try:
        rate = int(count), int(seconds)
    except ValueError:
        rate = (-1, 0)
    if not sep or rate[0] < 0 or rate[1] < 1:
        raise ConfigError(f"{name}={raw!r} must look like REQUESTS/SECONDS in whole seconds, e.g. "
                          f"{DEFAULT_RATE}, or be off.")
    return None if rate[0] == 0 else rate


def parse_networks(raw: str, name: str = PROXIES_VARIABLE) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR ranges, e.g. ``127.0.0.1,10.0.0.0/8``."""
    networks = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {part.strip()!r} is not an IP address or CIDR range.") from None
    return tuple(networks)


# Settings win (frontdesk/settings.py parses both variables at start, so a bad value stops the
# start); the environment is the fallback for a settings module that does not define them.
@cache
def _rate_from_environment(raw: str) -> Rate | None:
    return parse_rate(raw)


@cache
def _networks_from_environment(raw: str) -> tuple[Network, ...]:
    return parse_networks(raw)


def intake_rate() -> Rate | None:
    if hasattr(settings, "INTAKE_RATE_LIMIT"):
        return settings.INTAKE_RATE_LIMIT  # type: ignore[no-any-return]
    return _rate_from_environment(os.environ.get(RATE_VARIABLE, DEFAULT_RATE))


def trusted_proxies() -> tuple[Network, ...]:
    if hasattr(settings, "TRUSTED_PROXIES"):
        return tuple(settings.TRUSTED_PROXIES)
    return _networks_from_environment(os.environ.get(PROXIES_VARIABLE, ""))


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:  # fe80::1%eth0: the zone means nothing to anyone else
            return ipaddress.IPv6Address(str(address).partition("%")[0])
    return address


def _trusted(address: Address, proxies: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(request: HttpRequest) -> Address | None:
    """The client's address: ``REMOTE_ADDR``, or behind trusted proxies the right-most
    ``X-Forwarded-For`` hop that is not one of them. None when the server gives no address."""
    remote = _address(request.META.get("REMOTE_ADDR") or "")
    proxies = trusted_proxies()
    if remote is None or not _trusted(remote, proxies):
        return remote
    client = remote
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _address(hop)
        if address is None:  # a garbled hop: believe nothing to its left
            break
        client = address
        if not _trusted(address, proxies):
            break
    return client


def client_ip(request: HttpRequest) -> str | None:
    address = client_address(request)
    return None if address is None else str(address)


def _key(address: Address) -> str:
    # One IPv6 host usually owns a whole /64, so that is what one client is.
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


@cache
def _limiter() -> MovingWindowRateLimiter:
    # Built on first use, so each forked gunicorn worker has its own storage and expiry thread.
    return MovingWindowRateLimiter(MemoryStorage())


def _window(address: Address | None) -> tuple[RateLimitItemPerSecond, str] | None:
    rate = intake_rate()
    if rate is None or address is None:  # no known address: one shared key would limit everyone
        return None
    return RateLimitItemPerSecond(*rate), _key(address)


def retry_after(address: Address | None) -> int | None:
    """The seconds ``address`` must wait when it has wasted its limit (see :func:`count_wasted`),
    else None. Reads the window only: a request is counted once its outcome is known."""
    window = _window(address)
    if window is None:
        return None
    item, key = window
    limiter = _limiter()
    if limiter.test(item, "intake", key):
        return None
    reset_at, _remaining = limiter.get_window_stats(item, "intake", key)
    return max(1, math.ceil(reset_at - time.time()))


def count_wasted(address: Address | None) -> None:
    """Count one request from ``address`` that stored nothing new (refused, or a duplicate)."""
    window = _window(address)
    if window is not None:
        _limiter().hit(window[0], "intake", window[1])


def reset() -> None:
    """Forget every count in this process (tests)."""
    _limiter().storage.reset()
