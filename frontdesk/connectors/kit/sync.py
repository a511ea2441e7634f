"""``kit.sync``: converge one customer's Kit subscriber (tags, sequences, fields)."""

from __future__ import annotations

from frontdesk.connectors.kit.client import KitClient
from frontdesk.connectors.state import account_for, converge, save_applied
from frontdesk.customers.access import desired_state
from frontdesk.ledger.models import Job


def run(job: Job) -> None:
    customer = job.customer
    assert customer is not None, "kit.sync needs a customer"  # nosec B101  # narrows the type; enqueue always sets it
    desired = desired_state(customer)["kit"]
    account = account_for(customer, "kit")
    wanted = bool(desired["tags"] or desired["sequences"] or desired["fields"])
    if not account.external_id and not account.email and not wanted:
        return  # never asked Kit for anything
    email = account.email or customer.email
    with KitClient.from_settings() as kit:
        if not account.external_id and not wanted:
            # An earlier attempt's upsert may have created the subscriber (its answer lost):
            # look it up by that e-mail instead of creating one now.
            found = kit.find_subscriber(account.email)
            if found is None:
                account.email, account.applied = "", {}
                save_applied(account, "fields", {})
                return
            account.external_id = str(found.get("id", ""))
            save_applied(account, "fields", dict(account.applied.get("fields", {})))
        if not account.external_id:
            # Record the attempt first (see circle/sync.py): a retry then knows what to undo.
            account.email = customer.email
            save_applied(account, "fields", {**account.applied.get("fields", {}), **desired["fields"]})
            subscriber = kit.upsert_subscriber(customer.email, customer.name.split(" ")[0], desired["fields"])
            account.external_id, account.email = str(subscriber.get("id", "")), customer.email
            email = customer.email
            # An existing subscriber answers 200 and keeps its fields (kit.md §5: the upsert
            # "updates the first name"), so set them explicitly when they differ.
            # Compare every field frontdesk may have set (an earlier attempt's lost upsert
            # included), not only those still desired, and clear the rest.
            known = set(account.applied.get("fields", {})) | set(desired["fields"])
            current = {k: v for k, v in (subscriber.get("fields") or {}).items() if k in known and v not in (None, "")}
            if current != desired["fields"]:
                kit.update_subscriber(account.external_id, fields={**{k: "" for k in current}, **desired["fields"]})
            save_applied(account, "fields", dict(desired["fields"]))
        else:
            # Fields an earlier PUT may have set without our hearing back are cleared as well.
            pending_fields = set(account.applied.get("pending_fields", []))
            merged = {**{k: "" for k in set(account.applied.get("fields", {})) | pending_fields}, **desired["fields"]}
            moved = bool(account.email and account.email != customer.email)
            if moved or pending_fields or account.applied.get("fields", {}) != desired["fields"]:
                account.applied["pending_fields"] = sorted(merged)
                account.save(update_fields=["applied"])  # before the call
                # The e-mail changed in Stripe: move the same subscriber, never create a second.
                kit.update_subscriber(account.external_id, email=customer.email if moved else None, fields=merged)
                account.email = email = customer.email
                account.applied["pending_fields"] = []
                save_applied(account, "fields", dict(desired["fields"]))
        converge(account, {"tags": set(desired["tags"])},
                 add=lambda _kind, tag: kit.tag(tag, email),
                 remove=lambda _kind, tag: kit.untag(tag, account.external_id))  # a 404 (not tagged) counts as done
        # Kit has no "remove from sequence" call; a sequence once joined stays applied.
        converge(account, {"sequences": set(desired["sequences"])},
                 add=lambda _kind, sequence: kit.add_to_sequence(sequence, email), remove=None)
