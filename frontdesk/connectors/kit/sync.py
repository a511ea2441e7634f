"""``kit.sync``: converge one customer's Kit subscriber (tags, sequences, fields)."""

from __future__ import annotations

from frontdesk.connectors.kit.client import KitClient
from frontdesk.connectors.state import account_for, applied_set, save_applied
from frontdesk.customers.access import desired_state
from frontdesk.ledger.models import Job


def run(job: Job) -> None:
    customer = job.customer
    assert customer is not None, "kit.sync needs a customer"  # nosec B101  # narrows the type; enqueue always sets it
    desired = desired_state(customer)["kit"]
    account = account_for(customer, "kit")
    if not account.external_id and not (desired["tags"] or desired["sequences"] or desired["fields"]):
        return
    email = account.email or customer.email
    with KitClient.from_settings() as kit:
        if not account.external_id:
            subscriber = kit.upsert_subscriber(customer.email, customer.name.split(" ")[0], desired["fields"])
            account.external_id, account.email = str(subscriber.get("id", "")), customer.email
            email = customer.email
            # An existing subscriber answers 200 and keeps its fields (kit.md §5: the upsert
            # "updates the first name"), so set them explicitly when they differ.
            current = {k: v for k, v in (subscriber.get("fields") or {}).items() if k in desired["fields"]}
            if current != desired["fields"]:
                kit.update_subscriber(account.external_id, fields=desired["fields"])
            save_applied(account, "fields", dict(desired["fields"]))
        elif account.email and account.email != customer.email:
            # The e-mail changed in Stripe: move the same subscriber, never create a second.
            kit.update_subscriber(account.external_id, email=customer.email, fields=desired["fields"])
            account.email = email = customer.email
            save_applied(account, "fields", dict(desired["fields"]))
        elif account.applied.get("fields", {}) != desired["fields"]:
            merged = {**{k: "" for k in account.applied.get("fields", {})}, **desired["fields"]}
            kit.update_subscriber(account.external_id, fields=merged)
            save_applied(account, "fields", dict(desired["fields"]))
        tags = applied_set(account, "tags")
        for tag in sorted(set(desired["tags"]) - tags):
            kit.tag(tag, email)
            tags.add(tag)
            save_applied(account, "tags", tags)
        for tag in sorted(tags - set(desired["tags"])):
            kit.untag(tag, account.external_id)
            tags.discard(tag)
            save_applied(account, "tags", tags)
        # Kit has no "remove from sequence" call; a sequence once joined stays applied.
        sequences = applied_set(account, "sequences")
        for sequence in sorted(set(desired["sequences"]) - sequences):
            kit.add_to_sequence(sequence, email)
            sequences.add(sequence)
            save_applied(account, "sequences", sequences)
