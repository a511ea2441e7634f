"""The development sandbox: local fakes of Circle, Kit and Stripe, seeded with every target
the current rules name, so the whole pipeline runs with no provider account."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from frontdesk.fakes.base import FakeServer
from frontdesk.fakes.circle import FakeCircle
from frontdesk.fakes.kit import FakeKit
from frontdesk.fakes.stripe import FakeStripe


def start() -> dict[str, FakeServer]:
    port = settings.SANDBOX_PORT
    return {
        "circle": FakeCircle(port=port, token=settings.CIRCLE_API_TOKEN).start(),
        "kit": FakeKit(port=port + 1, api_key=settings.KIT_API_KEY).start(),
        "stripe": FakeStripe(port=port + 2, api_key=settings.STRIPE_API_KEY).start(),
    }


def seed(fakes: dict[str, Any], rules: dict[str, Any]) -> None:
    circle, kit = fakes["circle"], fakes["kit"]
    for name, spec in rules["entitlements"].items():
        c, k = spec["circle"], spec["kit"]
        for i in c["spaces"]:
            circle.add_space(i, f"{name} space {i}")
        for i in c["space_groups"]:
            circle.add_space_group(i, f"{name} group {i}")
        for i in c["access_groups"]:
            circle.add_access_group(i, f"{name} access {i}")
        for i in c["member_tags"]:
            circle.add_member_tag(i, f"{name} tag {i}")
        for i in k["tags"]:
            kit.add_tag(i, f"{name} tag {i}")
        for i in k["sequences"]:
            kit.add_sequence(i, f"{name} sequence {i}")
        for key in k["fields"]:
            kit.add_custom_field(key, key.replace("_", " ").title())
