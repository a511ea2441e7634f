"""Customers and entitlements: the source of truth that provider syncs converge to."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from frontdesk.customers.models import Customer
from frontdesk.rules.models import RulesVersion
from frontdesk.rules.schema import desired_targets


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_or_create_customer(email: str, stripe_customer_id: str | None, name: str = "") -> Customer:
    """Match on the Stripe customer id first, then on e-mail; attach the id when a customer
    first seen without one (a guest checkout) comes back with it."""
    email = normalise_email(email)
    for _ in range(3):  # two events about a new customer may race to create them
        customer = None
        if stripe_customer_id:
            customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
        if customer is None:
            customer = Customer.objects.filter(email=email).order_by("pk").first()
            if customer is not None and stripe_customer_id and customer.stripe_customer_id not in (None, stripe_customer_id):
                customer = None  # same e-mail, different Stripe customer: a different person record
        try:
            with transaction.atomic():
                if customer is None:
                    return Customer.objects.create(email=email, name=name, stripe_customer_id=stripe_customer_id)
                changed = []
                if not customer.email:  # first seen through an event that carried no e-mail
                    customer.email = email
                    customer.email_added = True  # type: ignore[attr-defined]
                    changed.append("email")
                if stripe_customer_id and not customer.stripe_customer_id:
                    customer.stripe_customer_id = stripe_customer_id
                    changed.append("stripe_customer_id")
                if name and not customer.name:
                    customer.name = name
                    changed.append("name")
                if changed:
                    customer.save(update_fields=[*changed, "updated_at"])
                return customer
        except IntegrityError:
            continue
    raise RuntimeError("could not create the customer: concurrent updates kept conflicting")


def desired_state(customer: Customer) -> dict[str, dict[str, Any]]:
    """What each provider should hold for this customer under the current rules."""
    rules = RulesVersion.current()
    names = set(customer.active_entitlements().values_list("name", flat=True))
    if rules is None:
        return desired_targets({"entitlements": {}, "mappings": []}, set())
    return desired_targets(rules.parsed, names)


def crm_properties(customer: Customer) -> dict[str, str]:
    """What a CRM should know about this customer: plan (active entitlement names), status and
    whether they have access. Values are strings, as CRMs store them."""
    names = sorted(set(customer.active_entitlements().values_list("name", flat=True)))
    return {
        "frontdesk_plan": ";".join(names),
        "frontdesk_access": "true" if names else "false",
        "frontdesk_status": customer_status(customer),
    }


def customer_status(customer: Customer) -> str:
    """One word for the customer's standing: active, past_due, canceled or none."""
    if customer.active_entitlements().exists():
        return "active"
    if customer.entitlements.exists():
        return "canceled"
    return "none"
