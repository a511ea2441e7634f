"""``hubspot.sync``: converge one customer's HubSpot contact (e-mail, first name, plan, access,
status) to what frontdesk knows.

What was last written is kept in ``ProviderAccount(provider="hubspot").applied["properties"]``
with the contact id as ``external_id``: a run whose properties equal it makes no call at all,
and a later change is one PATCH by id. The first run finds the contact by e-mail (it may have
been created by a form, an import or a person) and only creates one when none exists; a 409 on
that create means it appeared meanwhile, and it is then updated instead. See docs/crm.md.
"""

from __future__ import annotations

from typing import Any

from frontdesk.connectors.http import PERMANENT, TRANSIENT, ProviderError
from frontdesk.connectors.hubspot.client import ContactExists, HubSpotClient
from frontdesk.connectors.hubspot.setup import PROPERTIES
from frontdesk.connectors.state import account_for, save_applied
from frontdesk.customers.access import crm_properties
from frontdesk.customers.models import Customer
from frontdesk.ledger.models import Job

PROVIDER = "hubspot"
READ = ("email", "firstname", *PROPERTIES)


def desired_properties(customer: Customer) -> dict[str, str]:
    """The contact properties frontdesk owns for this customer."""
    desired = {"email": customer.email, **crm_properties(customer)}
    words = customer.name.split()
    if words:
        desired["firstname"] = words[0]  # as for Kit: the first word of the name
    return desired


def run(job: Job) -> None:
    customer = job.customer
    assert customer is not None, "hubspot.sync needs a customer"  # nosec B101  # narrows the type; enqueue always sets it
    if not customer.email:
        raise ProviderError(PROVIDER, PERMANENT, "missing_email", "the customer has no e-mail to find their contact by")
    desired = desired_properties(customer)
    account = account_for(customer, PROVIDER)
    applied: dict[str, Any] = account.applied.get("properties") or {}
    if account.external_id and applied == desired:
        return
    with HubSpotClient.from_settings() as hubspot:
        contact_id = account.external_id
        if contact_id:
            changes = {key: value for key, value in desired.items() if applied.get(key) != value}
            if changes and hubspot.update_contact(contact_id, changes) is None:
                contact_id = ""  # deleted or merged away in HubSpot: find the contact again
        if not contact_id:
            contact_id = converge_by_email(hubspot, desired)
        account.external_id, account.email = contact_id, customer.email
        save_applied(account, "properties", desired)


def converge_by_email(hubspot: HubSpotClient, desired: dict[str, str]) -> str:
    """Find the contact by e-mail, create it if there is none, and set what differs; return its id."""
    contact = hubspot.find_contact(desired["email"], READ)
    if contact is None:
        try:
            return _id(hubspot.create_contact(desired))
        except ContactExists as exc:
            # Created since the lookup (another integration, or our own earlier create whose
            # answer was lost): re-read it and update it like any existing contact.
            if exc.existing_id:
                contact = hubspot.get_contact(exc.existing_id, READ)
            contact = contact or hubspot.find_contact(desired["email"], READ)
            if contact is None:
                raise ProviderError(PROVIDER, TRANSIENT, "hubspot_conflict",
                                    "create answered 409 but the contact could not be read back") from None
    contact_id = _id(contact)
    changes = differences(contact.get("properties") or {}, desired)
    if changes and hubspot.update_contact(contact_id, changes) is None:
        raise ProviderError(PROVIDER, TRANSIENT, "hubspot_not_found", "the contact disappeared while it was updated")
    return contact_id


def differences(current: dict[str, Any], desired: dict[str, str]) -> dict[str, str]:
    """What to send to an existing contact. HubSpot shows unset properties as null or "".
    The e-mail is how it was found; a first name someone already set in HubSpot is kept."""
    changes = {}
    for key, value in desired.items():
        have = current.get(key) or ""
        if key == "email" or (key == "firstname" and have):
            continue
        if have != value:
            changes[key] = value
    return changes


def _id(contact: dict[str, Any]) -> str:
    contact_id = str(contact.get("id") or "")
    if not contact_id:
        raise ProviderError(PROVIDER, PERMANENT, "hubspot_unexpected_response",
                            "HubSpot returned a contact without an id")
    return contact_id
