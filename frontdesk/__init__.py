"""frontdesk: durable glue between Stripe, Circle and Kit."""

__version__ = "0.1.0"
