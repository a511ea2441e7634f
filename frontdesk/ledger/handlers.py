"""What runs each job kind: a plain dict of dotted paths, imported on first use.

A handler takes the claimed Job, makes its provider calls through a ProviderClient and raises
ProviderError when one fails. It must converge, so running it twice is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.utils.module_loading import import_string

from frontdesk.ledger.models import Job

HANDLERS = {
    "stripe.process_event": "frontdesk.intake.processing.run",
    "circle.sync": "frontdesk.connectors.circle.sync.run",
    "kit.sync": "frontdesk.connectors.kit.sync.run",
    "hubspot.sync": "frontdesk.connectors.hubspot.sync.run",
    "notify.slack": "frontdesk.notify.channels.slack",
    "notify.email": "frontdesk.notify.channels.email",
    "notify.webhook": "frontdesk.notify.channels.webhook",
    "outbound.webhook": "frontdesk.notify.channels.outbound",
}


@cache
def handler_for(kind: str) -> Callable[[Job], None]:
    return import_string(HANDLERS[kind])
