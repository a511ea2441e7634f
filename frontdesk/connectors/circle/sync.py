"""``circle.sync``: converge one customer's Circle membership to their entitlements."""

from __future__ import annotations

from frontdesk.connectors.circle.client import TARGETS, CircleClient
from frontdesk.connectors.state import account_for, applied_set, pending_set, save_applied, save_pending
from frontdesk.customers.access import desired_state
from frontdesk.ledger.models import Job


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
                for kind in ("spaces", "space_groups", "member_tags"):
                    save_pending(account, kind, pending_set(account, kind) | desired[kind])
                member = circle.create_member(
                    email, customer.name, spaces=sorted(desired["spaces"]),
                    space_groups=sorted(desired["space_groups"]), member_tags=sorted(desired["member_tags"]))
                account.external_id = str(member.get("id", ""))
                for kind in ("spaces", "space_groups", "member_tags"):
                    account.applied[kind] = sorted(applied_set(account, kind) | desired[kind])
                    save_pending(account, kind, pending_set(account, kind) - desired[kind])
            else:
                account.external_id, account.email = str(member.get("id", "")), email
                # Tags already on the member need no call; other memberships are not in the
                # member object, and Circle's adds are safe to repeat (circle.md §6).
                present = {t.get("id") for t in member.get("member_tags") or []}
                save_applied(account, "member_tags", applied_set(account, "member_tags") | (present & desired["member_tags"]))
        for kind in TARGETS:
            applied, pending = applied_set(account, kind), pending_set(account, kind)
            for target in sorted(desired[kind] - applied):
                save_pending(account, kind, pending | {target})  # before the call: see above
                circle.add(kind, target, account.email or customer.email)
                applied.add(target)
                pending.discard(target)
                account.applied[f"pending_{kind}"] = sorted(pending)
                save_applied(account, kind, applied)
            # A target whose add may have happened without our knowing is removed as well
            # (removing a non-member answers 404, which counts as done).
            for target in sorted((applied | pending) - desired[kind]):
                circle.remove(kind, target, account.email or customer.email)
                applied.discard(target)
                pending.discard(target)
                account.applied[f"pending_{kind}"] = sorted(pending)
                save_applied(account, kind, applied)
