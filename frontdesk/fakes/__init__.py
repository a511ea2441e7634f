"""Local fakes of Circle, Kit and Stripe for tests and local runs (see README.md here)."""

from __future__ import annotations

from .base import Call, FakeServer
from .circle import FakeCircle
from .kit import FakeKit
from .stripe import FakeStripe


def start_all(
    circle_port: int = 0,
    kit_port: int = 0,
    stripe_port: int = 0,
    seed: dict[str, dict] | None = None,
) -> dict[str, FakeServer]:
    """Start the three fakes; ``seed`` is ``{"circle": {...}, "kit": {...}, "stripe": {...}}``.

    The seed is each fake's *initial* seed, so ``reset()`` brings it back.
    """
    seed = seed or {}
    return {
        "circle": FakeCircle(circle_port, seed=seed.get("circle")).start(),
        "kit": FakeKit(kit_port, seed=seed.get("kit")).start(),
        "stripe": FakeStripe(stripe_port, seed=seed.get("stripe")).start(),
    }


__all__ = ["Call", "FakeCircle", "FakeKit", "FakeServer", "FakeStripe", "start_all"]
