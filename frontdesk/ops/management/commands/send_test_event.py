from __future__ import annotations

import json
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from frontdesk.intake import samples, signature


class Command(BaseCommand):
    help = "Post a realistic signed checkout.session.completed to a running frontdesk."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--price", required=True, help="a Stripe price id your rules map")
        parser.add_argument("--product", default=None)
        parser.add_argument("--name", default="")
        parser.add_argument("--mode", choices=["payment", "subscription"], default="payment")
        parser.add_argument("--url", default="http://127.0.0.1:8000/webhooks/stripe")

    def handle(self, *args: Any, **o: Any) -> None:
        if not settings.STRIPE_WEBHOOK_SECRETS:
            raise CommandError("STRIPE_WEBHOOK_SECRET is not set: the service would reject the event")
        session = samples.checkout_session(o["email"], o["price"], product=o["product"], mode=o["mode"], name=o["name"])
        body = json.dumps(samples.event("checkout.session.completed", session)).encode()
        headers = {"Content-Type": "application/json",
                   "Stripe-Signature": signature.header(body, settings.STRIPE_WEBHOOK_SECRETS[:1])}
        try:
            response = httpx.post(o["url"], content=body, headers=headers, timeout=10)
        except httpx.HTTPError as exc:
            raise CommandError(f"could not reach {o['url']}: {type(exc).__name__}. Is `frontdesk run` running?") from None
        if response.status_code != 200:
            raise CommandError(f"{o['url']} answered {response.status_code}: {response.text[:300]}")
        self.stdout.write(f"sent checkout.session.completed for {o['price']}: {response.text}")
