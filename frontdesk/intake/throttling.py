"""Who is calling, and whether they are over their limit on ``POST /webhooks/stripe``.

The limit is a moving window per client address held in this process's memory (the ``limits``
library): the intake must answer in milliseconds at high volume, so a database write per request
is too dear. Each web process counts on its own, so with N gunicorn workers an address may send
up to N times ``FRONTDESK_INTAKE_RATE_LIMIT``; the limit is there to keep one noisy address from
crowding out Stripe, not to meter anyone exactly (docs/security.md).

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


def retry_after(address: Address | None) -> int | None:
    """Count one request from ``address`` (see :func:`client_address`); return the seconds to
    wait when it is over the limit, else None. A request with no known address is not limited."""
    rate = intake_rate()
    if rate is None or address is None:
        return None
    item = RateLimitItemPerSecond(*rate)
    limiter = _limiter()
    key = _key(address)
    if limiter.hit(item, "intake", key):
        return None
    reset_at, _remaining = limiter.get_window_stats(item, "intake", key)
    return max(1, math.ceil(reset_at - time.time()))


def reset() -> None:
    """Forget every count in this process (tests)."""
    _limiter().storage.reset()
