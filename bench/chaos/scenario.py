"""The chaos scenario: customers with realistic Stripe lifecycles, the events Stripe sends for
them, what Stripe's API holds at the end (seeded into the fake), and what each customer should
end with (the oracle the run is checked against).

Everything here is plain data and pure functions of a seed, so the bench (bench/chaos.py) and
the test (tests/test_chaos.py) build the same kind of scenario. Event objects come from
tests/stripe_events.py, i.e. from Stripe's own OpenAPI fixtures.

Design rule: no customer holds one entitlement from two overlapping sources (except a
re-subscription after a cancellation), so a late event can never make access flap
legitimately: every provider change beyond the lifecycle's own transitions is a duplicate.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontdesk.rules.schema import desired_targets, parse
from tests import stripe_events as se

DAY = 86400
HOUR = 3600
RULES_FILE = Path(__file__).with_name("rules.yaml")

# plan → (price, product, lookup_key); what each grants comes from rules.yaml.
PLANS: dict[str, tuple[str, str, str | None]] = {
    "monthly": ("price_community_monthly", "prod_community", None),
    "annual": ("price_community_annual", "prod_community", "community_annual"),
    "course": ("price_course", "prod_course", None),
    "bundle": ("price_bundle", "prod_bundle", None),
    "pass30": ("price_course_30d", "prod_pass30", None),
}
GRANTS = {"monthly": ("community",), "annual": ("community",), "course": ("course",),
          "bundle": ("community", "course"), "pass30": ("course",)}

# archetype → weight (per cent of customers). "early" ones lose access *during* the run (a
# period end, a grace period or a 30-day pass running out) and are delivered first.
ARCHETYPES: dict[str, int] = {
    "sub_active": 22, "sub_upgrade": 3, "sub_cancel": 10, "sub_cancel_pending": 4,
    "sub_fail_recover": 7, "sub_fail_unpaid": 5, "sub_past_due_recent": 3, "sub_past_due_old": 3,
    "resubscribe": 3,
    "course": 14, "course_refund": 5, "course_partial_refund": 2, "bundle": 4, "bundle_refund": 1,
    "async_ok": 2, "async_fail": 1, "pass30_active": 2, "pass30_expired": 1,
    "early_period_end": 2, "early_grace_end": 2, "early_pass_end": 2, "early_pair": 2,
}
SUBSCRIPTION_ARCHETYPES = {a for a in ARCHETYPES if a.startswith(("sub_", "resub", "early_period",
                                                                   "early_grace", "early_pair"))}
EARLY = {a for a in ARCHETYPES if a.startswith("early_")}


@dataclass
class Person:
    """One scenario customer: their Stripe events and the truth about their access."""

    idx: int
    cus: str
    name: str
    archetype: str
    options: dict[str, Any]
    email_changes: list[tuple[int, str]] = field(default_factory=list)  # (time, new e-mail)
    first_email: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    # (entitlement, start, end or None): when the customer really held it
    intervals: list[tuple[str, int, int | None]] = field(default_factory=list)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → latest object
    sessions: list[dict[str, Any]] = field(default_factory=list)  # for the fake's seed

    @property
    def emails(self) -> list[str]:
        return [self.first_email, *(e for _, e in self.email_changes)]

    @property
    def final_email(self) -> str:
        return self.emails[-1]

    def email_at(self, t: int) -> str:
        email = self.first_email
        for when, new in self.email_changes:
            if when <= t:
                email = new
        return email

    @property
    def early(self) -> bool:
        return self.archetype in EARLY

    def access(self, t: float) -> set[str]:
        return {name for name, start, end in self.intervals if start <= t and (end is None or t < end)}

    def access_ends(self) -> list[int]:
        return [end for _, _, end in self.intervals if end is not None]


@dataclass
class Scenario:
    seed: int
    tag: str
    t0: int
    people: list[Person]
    rules: dict[str, Any]
    expiry_window: tuple[float, float]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for p in self.people for e in p.events]

    def last_access_change(self) -> float:
        """The latest moment any access changes by time alone (only the early archetypes)."""
        horizon = self.t0 + self.expiry_window[1] + 1
        return max([end for p in self.people for end in p.access_ends() if self.t0 < end <= horizon],
                   default=self.t0)

    def stripe_seed(self) -> dict[str, Any]:
        """What Stripe's API holds now: every customer, subscription and Checkout Session."""
        return {
            "customers": [se.customer_object(p.cus, p.final_email) for p in self.people],
            "subscriptions": [copy.deepcopy(s) for p in self.people for s in p.subscriptions.values()],
            "checkout_sessions": [s for p in self.people for s in p.sessions],
        }

    def circle_kit_seed(self) -> dict[str, Any]:
        """Every Circle and Kit target the rules name (as frontdesk/ops/sandbox.py seeds them)."""
        circle: dict[str, list[dict[str, Any]]] = {"spaces": [], "space_groups": [], "access_groups": [],
                                                   "member_tags": []}
        kit: dict[str, list[dict[str, Any]]] = {"tags": [], "sequences": [], "custom_fields": []}
        seen: set[str] = set()
        for name, spec in self.rules["entitlements"].items():
            for kind in circle:
                circle[kind] += [{"id": i, "name": f"{name} {kind} {i}"} for i in spec["circle"][kind]]
            kit["tags"] += [{"id": i, "name": f"{name} tag {i}"} for i in spec["kit"]["tags"]]
            kit["sequences"] += [{"id": i, "name": f"{name} sequence {i}"} for i in spec["kit"]["sequences"]]
            for key in spec["kit"]["fields"]:
                if key not in seen:
                    seen.add(key)
                    kit["custom_fields"].append({"key": key, "label": key.replace("_", " ").title()})
        return {"circle": circle, "kit": kit}

    # --- the oracle --------------------------------------------------------------------------

    def expected_targets(self, person: Person, t: float) -> dict[str, dict[str, Any]]:
        return desired_targets(self.rules, person.access(t))

    def allowed_changes(self, person: Person, until: float) -> dict[tuple[Any, ...], int]:
        """How many state-changing provider calls the true lifecycle justifies, per target:
        one create per provider record, one add per grant, one remove per revoke, one Kit
        subscriber update per change of its fields or of the e-mail."""
        points = sorted({t for _, s, e in person.intervals for t in (s, e) if t is not None and t <= until})
        states = [desired_targets(self.rules, set())] + [self.expected_targets(person, t) for t in points]
        allowed: dict[tuple[Any, ...], int] = {}

        def bump(key: tuple[Any, ...], n: int = 1) -> None:
            allowed[key] = allowed.get(key, 0) + n

        for before, after in zip(states, states[1:]):
            for provider, kinds in (("circle", ("spaces", "space_groups", "member_tags", "access_groups")),
                                    ("kit", ("tags",))):
                for kind in kinds:
                    old, new = set(before[provider][kind]), set(after[provider][kind])
                    for target in new - old:
                        bump((provider, kind, target, "add"))
                    for target in old - new:
                        bump((provider, kind, target, "remove"))
            if before["kit"]["fields"] != after["kit"]["fields"]:
                bump(("kit", "subscriber", "update"))
        ever_circle = any(any(s["circle"].values()) for s in states)
        ever_kit = any(s["kit"]["tags"] or s["kit"]["sequences"] or s["kit"]["fields"] for s in states)
        if ever_circle:
            allowed[("circle", "member", "create")] = 1
        if ever_kit:
            allowed[("kit", "subscriber", "create")] = 1
            for s in states:
                for seq in s["kit"]["sequences"]:
                    allowed[("kit", "sequences", seq, "add")] = 1
            bump(("kit", "subscriber", "update"), len([c for c in person.email_changes if c[0] <= until]))
        return allowed


# --- building lifecycles ----------------------------------------------------------------------


class Builder:
    """Emits one person's events in their true order, with ids unique to this run."""

    def __init__(self, scenario_tag: str, t0: int, window: tuple[float, float]) -> None:
        self.tag, self.t0, self.window = scenario_tag, t0, window
        self.n = 0

    def uid(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.tag}{self.n:07d}"

    def during_run(self, rng: random.Random) -> int:
        return int(self.t0 + rng.uniform(*self.window))

    def emit(self, p: Person, event_type: str, obj: dict[str, Any], t: int) -> None:
        p.events.append(se.event(event_type, copy.deepcopy(obj), event_id=self.uid("evt"), created=int(t)))

    # subscriptions ----------------------------------------------------------------------------

    def sub_object(self, p: Person, sub_id: str, plan: str, status: str, start: int, period: tuple[int, int],
                   *, cancel_at_period_end: bool = False, ended: int | None = None) -> dict[str, Any]:
        price, product, lookup_key = PLANS[plan]
        sub = se.subscription(p.cus, status, price, product, sub_id=sub_id, period_end=period[1],
                              cancel_at_period_end=cancel_at_period_end)
        item = sub["items"]["data"][0]
        item["price"]["lookup_key"] = lookup_key
        item.update(current_period_start=period[0], current_period_end=period[1], subscription=sub_id)
        sub.update(created=start, start_date=start, ended_at=ended, canceled_at=ended,
                   cancel_at=period[1] if cancel_at_period_end else None)
        if "current_period_start" in sub:  # pre-Basil shape in some fixtures
            sub.update(current_period_start=period[0], current_period_end=period[1])
        p.subscriptions[sub_id] = sub
        return sub

    def invoice(self, p: Person, sub_id: str, plan: str, t: int, *, paid: bool, reason: str) -> dict[str, Any]:
        price, product, _ = PLANS[plan]
        inv = se.invoice(p.email_at(t), customer=p.cus, subscription=sub_id, price=price, product=product)
        inv.update(id=self.uid("in"), status="paid" if paid else "open", billing_reason=reason, created=t,
                   customer_name=p.name)
        return inv

    def session(self, p: Person, plan: str, t: int, *, mode: str, payment_status: str = "paid",
                subscription: str | None = None) -> dict[str, Any]:
        price, product, lookup_key = PLANS[plan]
        s = se.checkout_session(p.email_at(t), mode=mode, payment_status=payment_status, customer=p.cus,
                                subscription=subscription, name=p.name)
        s.update(id=self.uid("cs_test"), created=t,
                 payment_intent=None if mode == "subscription" else self.uid("pi"))
        s.pop("line_items", None)  # real webhooks do not carry line items: frontdesk reads them
        item = se.line_item(price, product, lookup_key)
        item["id"] = self.uid("li")
        p.sessions.append({"session": copy.deepcopy(s), "line_items": [item]})
        return s

    def subscribe(self, p: Person, plan: str, start: int) -> dict[str, Any]:
        """Checkout of a subscription, in Stripe's order: the subscription, its first invoice,
        then the completed session."""
        sub_id = self.uid("sub")
        period = (start, start + 30 * DAY)
        state = {"id": sub_id, "plan": plan, "start": start, "period": period}
        self.emit(p, "customer.subscription.created", self.sub_object(p, sub_id, plan, "active", start, period), start)
        self.emit(p, "invoice.paid", self.invoice(p, sub_id, plan, start + 1, paid=True,
                                                  reason="subscription_create"), start + 1)
        self.emit(p, "checkout.session.completed", self.session(p, plan, start + 2, mode="subscription",
                                                                subscription=sub_id), start + 2)
        return state

    def update(self, p: Person, st: dict[str, Any], status: str, t: int, **kw: Any) -> None:
        kind = "customer.subscription.deleted" if status == "canceled" else "customer.subscription.updated"
        obj = self.sub_object(p, st["id"], st["plan"], status, st["start"], st["period"],
                              ended=t if status == "canceled" else None, **kw)
        self.emit(p, kind, obj, t)

    def renew(self, p: Person, st: dict[str, Any]) -> int:
        t = st["period"][1]
        st["period"] = (t, t + 30 * DAY)
        self.emit(p, "invoice.paid", self.invoice(p, st["id"], st["plan"], t, paid=True,
                                                  reason="subscription_cycle"), t)
        self.update(p, st, "active", t + 1)
        return t

    def fail(self, p: Person, st: dict[str, Any], t: int) -> None:
        self.emit(p, "invoice.payment_failed", self.invoice(p, st["id"], st["plan"], t, paid=False,
                                                            reason="subscription_cycle"), t)
        self.update(p, st, "past_due", t + 1)

    def recover(self, p: Person, st: dict[str, Any], t: int) -> None:
        self.emit(p, "invoice.paid", self.invoice(p, st["id"], st["plan"], t, paid=True,
                                                  reason="subscription_cycle"), t)
        self.update(p, st, "active", t + 1)

    # one-off purchases --------------------------------------------------------------------------

    def buy(self, p: Person, plan: str, t: int) -> dict[str, Any]:
        s = self.session(p, plan, t, mode="payment")
        self.emit(p, "checkout.session.completed", s, t)
        return s

    def refund(self, p: Person, session: dict[str, Any], t: int, *, full: bool) -> None:
        charge = se.charge(session["payment_intent"], amount=4900, refunded_amount=4900 if full else 1500,
                           customer=p.cus)
        charge.update(id=self.uid("ch"), created=t)
        self.emit(p, "charge.refunded", charge, t)


def _hold(p: Person, plan: str, start: int, end: int | None) -> None:
    for name in GRANTS[plan]:
        p.intervals.append((name, start, end))


def _subscription_life(b: Builder, p: Person, rng: random.Random, k: int, plan: str = "monthly",
                       period_end_at: int | None = None) -> tuple[dict[str, Any], int]:
    """Subscribe and renew k times; the current period contains now (or ends at
    ``period_end_at``). Returns the subscription state and its start."""
    if period_end_at is not None:
        start = period_end_at - (k + 1) * 30 * DAY
    else:
        start = b.t0 - k * 30 * DAY - rng.randint(6 * DAY, 25 * DAY)
    st = b.subscribe(p, plan, start)
    for _ in range(k):
        b.renew(p, st)
    return st, start


def build_person(b: Builder, p: Person, rng: random.Random, k: int) -> None:
    """Fill ``p.events`` and ``p.intervals`` for its archetype with k renewals. The number of
    events depends on the archetype, options and k only, never on random draws."""
    a, t0 = p.archetype, b.t0
    if a in ("sub_active", "sub_upgrade"):
        st, start = _subscription_life(b, p, rng, k)
        if a == "sub_upgrade":
            st["plan"] = "annual"
            b.update(p, st, "active", st["period"][0] + rng.randint(HOUR, 4 * DAY))
        _hold(p, "monthly", start, None)
    elif a == "sub_cancel":
        if p.options["variant"] == "now":
            st, start = _subscription_life(b, p, rng, k)
            end = st["period"][0] + rng.randint(HOUR, 4 * DAY)
        else:  # set to cancel at period end; that period ended before now
            st, start = _subscription_life(b, p, rng, k, period_end_at=t0 - rng.randint(2 * DAY, 20 * DAY))
            b.update(p, st, "active", st["period"][0] + rng.randint(HOUR, 10 * DAY), cancel_at_period_end=True)
            end = st["period"][1]
        b.update(p, st, "canceled", end)
        _hold(p, "monthly", start, end)
    elif a == "sub_cancel_pending":
        st, start = _subscription_life(b, p, rng, k)
        b.update(p, st, "active", st["period"][0] + rng.randint(HOUR, 4 * DAY), cancel_at_period_end=True)
        _hold(p, "monthly", start, st["period"][1])
    elif a == "sub_fail_recover":
        st, start = _subscription_life(b, p, rng, k)
        t = st["period"][0] + rng.randint(HOUR, 3 * DAY)
        b.fail(p, st, t)
        b.recover(p, st, t + rng.randint(HOUR, 2 * DAY))
        _hold(p, "monthly", start, None)
    elif a == "sub_fail_unpaid":
        st, start = _subscription_life(b, p, rng, k)
        t = st["period"][0] + rng.randint(HOUR, 2 * DAY)
        b.fail(p, st, t)
        end = t + rng.randint(DAY, 2 * DAY)
        b.update(p, st, "canceled" if p.options["variant"] == "canceled" else "unpaid", end)
        _hold(p, "monthly", start, end)
    elif a in ("sub_past_due_recent", "sub_past_due_old"):
        st, start = _subscription_life(b, p, rng, k)
        t = (t0 - rng.randint(2 * HOUR, 2 * DAY)) if a.endswith("recent") else (t0 - rng.randint(4 * DAY, 5 * DAY))
        t = max(t, st["period"][0] + HOUR)
        b.fail(p, st, t)
        _hold(p, "monthly", start, t + 1 + 3 * DAY)  # past_due since the update at t + 1
    elif a == "resubscribe":
        first = t0 - k * 30 * DAY - rng.randint(15 * DAY, 25 * DAY)
        st = b.subscribe(p, "monthly", first)
        for _ in range(k):
            b.renew(p, st)
        end = st["period"][0] + rng.randint(HOUR, 3 * DAY)
        b.update(p, st, "canceled", end)
        again = end + rng.randint(2 * HOUR, 4 * DAY)
        b.subscribe(p, "monthly", again)
        _hold(p, "monthly", first, end)
        _hold(p, "monthly", again, None)
    elif a in ("course", "course_refund", "course_partial_refund", "bundle", "bundle_refund"):
        plan = "bundle" if a.startswith("bundle") else "course"
        t = t0 - rng.randint(2 * DAY, 25 * DAY)
        s = b.buy(p, plan, t)
        end = None
        if a.endswith("refund"):
            full = not a.endswith("partial_refund")
            r = t + rng.randint(HOUR, DAY)
            b.refund(p, s, r, full=full)
            end = r if full else None
        _hold(p, plan, t, end)
    elif a in ("async_ok", "async_fail"):
        t = t0 - rng.randint(2 * DAY, 25 * DAY)
        s = b.session(p, "course", t, mode="payment", payment_status="unpaid")
        b.emit(p, "checkout.session.completed", s, t)
        later = min(t + rng.randint(HOUR, 3 * DAY), t0 - HOUR)  # never in the future
        if a == "async_ok":
            s = {**s, "payment_status": "paid"}
            b.emit(p, "checkout.session.async_payment_succeeded", s, later)
            _hold(p, "course", later, None)
        else:
            b.emit(p, "checkout.session.async_payment_failed", s, later)
        p.sessions[-1]["session"] = copy.deepcopy(s)
    elif a in ("pass30_active", "pass30_expired", "early_pass_end"):
        if a == "pass30_active":
            t = t0 - rng.randint(2 * DAY, 25 * DAY)
        elif a == "pass30_expired":
            t = t0 - rng.randint(35 * DAY, 45 * DAY)
        else:
            t = b.during_run(rng) - 30 * DAY
        b.buy(p, "pass30", t)
        _hold(p, "pass30", t, t + 30 * DAY)
    elif a == "early_period_end":
        end = b.during_run(rng)
        st, start = _subscription_life(b, p, rng, k, period_end_at=end)
        b.update(p, st, "active", st["period"][0] + rng.randint(HOUR, 4 * DAY), cancel_at_period_end=True)
        _hold(p, "monthly", start, end)
    elif a == "early_grace_end":
        ends = b.during_run(rng)
        st, start = _subscription_life(b, p, rng, k)
        t = ends - 3 * DAY - 1
        b.fail(p, st, t)
        _hold(p, "monthly", start, ends)
    elif a == "early_pair":
        # Two accesses that end by time, at moments at least 40 s apart: a subscription set
        # to cancel at its period end and a 30-day pass.
        lo, hi = b.window
        first = int(t0 + rng.uniform(lo, max(lo, hi - 45)))
        second = int(min(t0 + hi, first + rng.uniform(45, 90)))
        if rng.random() < 0.5:
            first, second = second, first
        st, start = _subscription_life(b, p, rng, k, period_end_at=first)
        b.update(p, st, "active", st["period"][0] + rng.randint(HOUR, 4 * DAY), cancel_at_period_end=True)
        _hold(p, "monthly", start, first)
        bought = second - 30 * DAY
        b.buy(p, "pass30", bought)
        _hold(p, "pass30", bought, second)
    else:  # pragma: no cover
        raise ValueError(a)

    if p.options.get("cross_sell"):
        t = t0 - rng.randint(DAY, 20 * DAY)
        b.buy(p, "course", t)
        _hold(p, "course", t, None)
    for _ in range(p.options.get("profile_updates", 0)):
        t = t0 - rng.randint(HOUR, DAY)
        b.emit(p, "customer.updated", se.customer_object(p.cus, p.email_at(t)), t)
    for when, email in p.email_changes:
        b.emit(p, "customer.updated", se.customer_object(p.cus, email), when)
    p.events.sort(key=lambda e: e["created"])


def _options(rng: random.Random, archetype: str) -> dict[str, Any]:
    opts: dict[str, Any] = {"variant": rng.choice(["now", "period_end"]) if archetype == "sub_cancel"
                            else rng.choice(["unpaid", "canceled"]) if archetype == "sub_fail_unpaid" else ""}
    # Course buyers never cross-sell course (overlapping sources of one entitlement could
    # legitimately flap when delivered out of order; see the module docstring).
    if archetype in SUBSCRIPTION_ARCHETYPES and archetype != "early_pair" and rng.random() < 0.15:
        opts["cross_sell"] = True
    roll = rng.random()
    opts["email_changes"] = 2 if roll < 0.02 else 1 if roll < 0.12 else 0
    return opts


def generate(events: int, customers: int, *, seed: int = 1, t0: int, tag: str,
             expiry_window: tuple[float, float] = (60.0, 300.0), rules_file: Path = RULES_FILE,
             progress: Callable[[str], None] | None = None) -> Scenario:
    """Exactly ``events`` events across ``customers`` customers; renewals fill the gap."""
    rng = random.Random(seed)
    rules = parse(rules_file.read_text(encoding="utf-8"), str(rules_file))
    names, weights = zip(*ARCHETYPES.items())
    people: list[Person] = []
    for i in range(customers):
        archetype = rng.choices(names, weights)[0]
        opts = _options(rng, archetype)
        people.append(Person(idx=i, cus=f"cus_{tag}{i:06d}", name=f"Chaos Person{i}", archetype=archetype,
                             options=opts))

    def build(p: Person, k: int) -> None:
        prng = random.Random(seed * 1_000_003 + p.idx)
        life_seed = prng.random()
        p.first_email = f"chaos{p.idx}.{tag}@example.com"
        p.email_changes = []
        for attempt in ("dry", "real"):  # the dry run learns when the first event happens
            p.events, p.intervals, p.subscriptions, p.sessions = [], [], {}, []
            build_person(Builder(f"{tag}{p.idx:05d}x", t0, expiry_window), p, random.Random(life_seed), k)
            if attempt == "dry":
                # E-mail changes happen some time after the first purchase, before now.
                first = min(e["created"] for e in p.events)
                times = sorted(int(prng.uniform(first + HOUR, t0 - HOUR)) for _ in range(p.options["email_changes"]))
                p.email_changes = [(t, f"chaos{p.idx}.{tag}.v{n + 1}@example.org") for n, t in enumerate(times)]

    renewals = {p.idx: 0 for p in people}
    for p in people:
        build(p, 0)
    total = sum(len(p.events) for p in people)
    if total > events:
        raise SystemExit(f"{customers} customers need at least {total} events; ask for more events or fewer customers")
    renewable = [p for p in people if p.archetype in SUBSCRIPTION_ARCHETYPES]
    gap = events - total
    while gap >= 2 and renewable:  # a renewal is two events: invoice.paid, subscription.updated
        p = rng.choice(renewable)
        if renewals[p.idx] < 6:
            renewals[p.idx] += 1
            gap -= 2
    if gap:  # an odd one: a profile update (same e-mail), as Stripe sends for address changes
        p = rng.choice(people)
        p.options["profile_updates"] = p.options.get("profile_updates", 0) + gap
    for p in people:
        if renewals[p.idx] or p.options.get("profile_updates"):
            build(p, renewals[p.idx])
    scenario = Scenario(seed=seed, tag=tag, t0=t0, people=people, rules=rules, expiry_window=expiry_window)
    assert len(scenario.events) == events, (len(scenario.events), events)
    return scenario


def deliveries(scenario: Scenario, rng: random.Random, early_share: float = 0.2) -> list[dict[str, Any]]:
    """Each event 1 to 3 times, shuffled across all customers. Events of customers whose access
    ends during the run go in the first ``early_share`` of the sequence (still shuffled), so
    that they are granted before that moment and the ending is really exercised."""
    early: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for p in scenario.people:
        for event in p.events:
            copies = rng.choices([1, 2, 3], [0.5, 0.3, 0.2])[0]
            (early if p.early else rest).extend([event] * copies)
    rng.shuffle(early)
    rng.shuffle(rest)
    head = max(0, int((len(early) + len(rest)) * early_share) - len(early))
    first = early + rest[:head]
    rng.shuffle(first)
    return first + rest[head:]
