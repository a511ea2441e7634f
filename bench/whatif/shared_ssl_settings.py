"""What-if settings for bench/run.py --what-if shared-ssl: frontdesk's own settings, plus one
process-wide SSL context for outgoing HTTP.

NOT the shipped configuration and not a proposed file: a measurement aid. frontdesk's
ProviderClient (frontdesk/connectors/http.py) builds a new httpx.Client for every job, and each
httpx.Client builds a new ssl.SSLContext and loads the whole CA bundle into it
(load_verify_locations) even for http:// URLs: tens of ms of CPU per job. This module makes httpx
reuse one default context (httpx's documented advice), to measure what that costs.
"""

from typing import Any

import httpx._transports.default as _transport

from frontdesk.settings import *  # noqa: F403

_original = _transport.create_ssl_context
_shared: dict[bool, Any] = {}


def _create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
    if verify is True and cert is None:
        if trust_env not in _shared:
            _shared[trust_env] = _original(verify=verify, cert=cert, trust_env=trust_env)
        return _shared[trust_env]
    return _original(verify=verify, cert=cert, trust_env=trust_env)


_transport.create_ssl_context = _create_ssl_context
