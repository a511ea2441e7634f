"""``circle.sync``: converge one customer's Circle membership to their entitlements."""

from __future__ import annotations

from frontdesk.connectors.circle.client import TARGETS, CircleClient
from frontdesk.connectors.state import account_for, applied_set, converge, pending_set, save_applied
from frontdesk.customers.access import desired_state
from frontdesk.ledger.models import Job

CREATE_WITH = ("spaces", "space_groups", "member_tags")  # what a member can be created with


def run(job: Job) -> None:
    customer = job.customer
    assert customer is not None, "circle.sync needs a customer"  # nosec B101  # narrows the type; enqueue always sets it
    desired = {kind: set(ids) for kind, ids in desired_state(customer)["circle"].items()}
    account = account_for(customer, "circle")
    if not account.external_id and not account.email and not any(desired.values()):
        return  # never asked Circle for anything: nothing to take away
    with CircleClient.from_settings() as circle:
        if not account.external_id:
            # Search before create, every time: a create that timed out may have succeeded,
            # and Circle has no idempotency keys (circle.md §7.1). Search the e-mail an earlier
            # attempt created with, even if the customer's has changed since.
            email = account.email or customer.email
            member = circle.find_member(email)
            if member is None and not any(desired.values()):
                account.email, account.applied = "", {}  # the earlier create did not happen
                save_applied(account, "spaces", set())
                return
            if member is None:
                # Record the attempt before making it: if its answer is lost (a timeout, a
                # crash), the retry finds the member by this e-mail and takes back whatever
                # is no longer desired by then.
                account.email = email
                for kind in CREATE_WITH:
                    account.applied[f"pending_{kind}"] = sorted(pending_set(account, kind) | desired[kind])
                account.save(update_fields=["applied", "email"])
                member = circle.create_member(
                    email, customer.name, spaces=sorted(desired["spaces"]),
                    space_groups=sorted(desired["space_groups"]), member_tags=sorted(desired["member_tags"]))
                account.external_id = str(member.get("id", ""))
                for kind in CREATE_WITH:
                    account.applied[kind] = sorted(applied_set(account, kind) | desired[kind])
                    account.applied[f"pending_{kind}"] = sorted(pending_set(account, kind) - desired[kind])
                save_applied(account, "spaces", applied_set(account, "spaces"))
            else:
                account.external_id, account.email = str(member.get("id", "")), email
                # Tags already on the member need no call; other memberships are not in the
                # member object, and Circle's adds are safe to repeat (circle.md §6).
                present = {t.get("id") for t in member.get("member_tags") or []}
                save_applied(account, "member_tags", applied_set(account, "member_tags") | (present & desired["member_tags"]))
        email_in_circle = account.email or customer.email
        converge(account, {kind: desired[kind] for kind in TARGETS},
                 add=lambda kind, target: circle.add(kind, target, email_in_circle),
                 remove=lambda kind, target: circle.remove(kind, target, email_in_circle))
