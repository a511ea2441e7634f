"""``circle.sync``: converge one customer's Circle membership to their entitlements."""

from __future__ import annotations

from frontdesk.connectors.circle.client import TARGETS, CircleClient
from frontdesk.connectors.state import account_for, applied_set, save_applied
from frontdesk.customers.access import desired_state
from frontdesk.ledger.models import Job


def run(job: Job) -> None:
    customer = job.customer
    assert customer is not None, "circle.sync needs a customer"  # nosec B101  # narrows the type; enqueue always sets it
    desired = {kind: set(ids) for kind, ids in desired_state(customer)["circle"].items()}
    account = account_for(customer, "circle")
    if not account.external_id and not any(desired.values()):
        return  # never granted anything in Circle: nothing to take away
    with CircleClient.from_settings() as circle:
        if not account.external_id:
            # Search before create, every time: a create that timed out may have succeeded,
            # and Circle has no idempotency keys (circle.md §7.1).
            member = circle.find_member(customer.email)
            if member is None:
                member = circle.create_member(
                    customer.email, customer.name, spaces=sorted(desired["spaces"]),
                    space_groups=sorted(desired["space_groups"]), member_tags=sorted(desired["member_tags"]))
                account.external_id, account.email = str(member.get("id", "")), customer.email
                for kind in ("spaces", "space_groups", "member_tags"):
                    account.applied[kind] = sorted(desired[kind])
                save_applied(account, "access_groups", applied_set(account, "access_groups"))
            else:
                account.external_id, account.email = str(member.get("id", "")), customer.email
                # Tags already on the member need no call; other memberships are not in the
                # member object, and Circle's adds are safe to repeat (circle.md §6).
                present = {t.get("id") for t in member.get("member_tags") or []}
                save_applied(account, "member_tags", applied_set(account, "member_tags") | (present & desired["member_tags"]))
        for kind in TARGETS:
            applied = applied_set(account, kind)
            for target in sorted(desired[kind] - applied):
                circle.add(kind, target, account.email or customer.email)
                applied.add(target)
                save_applied(account, kind, applied)
            for target in sorted(applied - desired[kind]):
                circle.remove(kind, target, account.email or customer.email)
                applied.discard(target)
                save_applied(account, kind, applied)
