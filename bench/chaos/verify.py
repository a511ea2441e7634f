"""Checking a chaos run: what reached the database, what the fakes were told, and whether the
customers ended where their lifecycles say they should.

Needs Django configured for the run's database (the ORM) and the fakes of the run
(in-process objects: their call logs and state).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count

from frontdesk.customers.access import desired_state
from frontdesk.customers.models import Customer, ProviderAccount
from frontdesk.fakes.base import Call, FakeServer
from frontdesk.intake.models import Event
from frontdesk.ledger.models import Job

from .harness import SendStats, Timeline
from .scenario import Person, Scenario

CIRCLE = "/api/admin/v2"

# Bugs in frontdesk this run found (docs/reliability.md has file, line and suggested fix).
# A miss is attributed to one only when the database shows that bug's own footprint.
KNOWN_BUGS = {
    "A": "database errors (deadlock) in a job are sent to review as internal_error; the Stripe "
         "rate-slot row lock is held for the whole processing transaction",
    "B": "a write whose answer was lost (a create, an upsert, an add) is never undone when access "
         "is revoked before the retry: the syncs only undo what they recorded as applied",
    "C": "an e-mail change is lost when customer.updated is processed before the customer exists",
    "D": "a customer's second expiry queues no sync (idempotency key '<provider>:customer:N:expiry' reused)",
}
CIRCLE_KINDS = ("spaces", "space_groups", "member_tags", "access_groups")


@dataclass
class Report:
    events: int = 0
    deliveries: int = 0
    posts: int = 0
    accepted: int = 0
    not_accepted: int = 0
    lost: int = 0
    stored_twice: int = 0
    not_processed: int = 0
    duplicated_side_effects: int = 0
    divergent: int = 0
    wrong_access: int = 0
    wrong_email: int = 0
    duplicate_records: int = 0
    jobs_not_final: int = 0
    drain_seconds: float | None = None
    answers: Counter[str] = field(default_factory=Counter)
    answers_during_db_restart: Counter[str] = field(default_factory=Counter)
    jobs: Counter[tuple[str, str]] = field(default_factory=Counter)
    not_final: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    provider_calls: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    details: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # figure → known bug → how many of the figure's misses that bug explains
    explained: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def unexplained(self) -> list[str]:
        """Missed targets not (fully) explained by a known bug: new problems."""
        out = []
        for name in self.TARGETS:
            value = getattr(self, name)
            if value > sum(self.explained[name].values()):
                out.append(f"{name} = {value}")
        if self.drain_seconds is None:
            out.append("the queue did not drain")
        return out

    def known_bugs(self) -> str:
        lines = []
        for bug in sorted({b for c in self.explained.values() for b, n in c.items() if n}):
            where = ", ".join(f"{name} {c[bug]}" for name, c in self.explained.items() if c.get(bug))
            lines.append(f"bug {bug} ({where}): {KNOWN_BUGS[bug]}")
        return "\n".join(lines)

    TARGETS = ("lost", "stored_twice", "not_accepted", "not_processed", "duplicated_side_effects", "divergent",
               "wrong_access", "wrong_email", "duplicate_records", "jobs_not_final")

    def failures(self) -> list[str]:
        missed = [f"{name} = {getattr(self, name)}" for name in self.TARGETS if getattr(self, name)]
        if self.drain_seconds is None:
            missed.append("the queue did not drain")
        return missed

    def table(self) -> str:
        def row(label: str, value: Any, target: str = "", name: str = "") -> str:
            ok = "" if not target else ("ok" if str(value) == target else "MISSED")
            bugs = {b: n for b, n in (self.explained.get(name) or {}).items() if n} if name else None
            if ok == "MISSED" and bugs:
                ok += " (" + ", ".join(f"bug {b}: {n}" for b, n in sorted(bugs.items())) + ")"
            return f"| {label} | {value} | {target} | {ok} |"

        drain = "did not drain" if self.drain_seconds is None else f"{self.drain_seconds:.1f} s"
        lines = [
            "| figure | value | target | |", "| --- | ---: | ---: | --- |",
            row("events generated", self.events),
            row("deliveries (each event 1–3 times)", self.deliveries),
            row("webhook POSTs, retries included", self.posts),
            row("events accepted (2xx)", self.accepted, str(self.events)),
            row("events never accepted (sender gave up)", self.not_accepted, "0"),
            row("events lost (accepted, not stored)", self.lost, "0"),
            row("events stored more than once", self.stored_twice, "0"),
            row("events stored but not processed", self.not_processed, "0", "not_processed"),
            row("duplicated side effects (at the fakes)", self.duplicated_side_effects, "0", "duplicated_side_effects"),
            row("customers whose provider state differs from their entitlements", self.divergent, "0", "divergent"),
            row("customers whose entitlements differ from their lifecycle", self.wrong_access, "0", "wrong_access"),
            row("customers with a wrong e-mail", self.wrong_email, "0", "wrong_email"),
            row("duplicate customers / Circle members / Kit subscribers", self.duplicate_records, "0"),
            row("jobs left not final (incl. needs_review)", self.jobs_not_final, "0", "jobs_not_final"),
            row("time to drain after the chaos", drain),
        ]
        return "\n".join(lines)

    def breakdown(self) -> str:
        out = []
        if self.known_bugs():
            out.append(self.known_bugs())
        out.append("webhook answers: " + ", ".join(f"{k} × {v}" for k, v in sorted(self.answers.items())))
        if self.answers_during_db_restart:
            out.append("answers while PostgreSQL restarted (±5 s): " + ", ".join(
                f"{k} × {v}" for k, v in sorted(self.answers_during_db_restart.items())))
        out.append("jobs by kind and state: " + ", ".join(f"{k}/{s} × {n}" for (k, s), n in sorted(self.jobs.items())))
        out.append("attempt outcomes: " + ", ".join(f"{k} × {v}" for k, v in sorted(self.attempts.items())))
        out.append("provider calls (faulted): " + ", ".join(
            f"{k} {v} ({self.faults.get(k, 0)})" for k, v in sorted(self.provider_calls.items())))
        if self.not_final:
            out.append("not final: " + ", ".join(f"{k}/{s}/{r or '-'} × {n}" for (k, s, r), n in self.not_final.items()))
        for name, items in self.details.items():
            if items:
                out.append(f"{name} ({len(items)}):")
                cap = 400 if name.startswith("traces") else 12
                out += [f"  - {item}" for item in items[:cap]]
                if len(items) > cap:
                    out.append(f"  - … {len(items) - cap} more")
        return "\n".join(out)


# ---- side effects --------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _param(call: Call, name: str) -> Any:
    if isinstance(call.body, dict) and name in call.body:
        return call.body[name]
    values = call.query.get(name)
    return values[0] if values else None


def circle_effect(call: Call) -> tuple[str | None, tuple[Any, ...]] | None:
    """(e-mail, target key) of a state-changing Circle call frontdesk makes."""
    path, m = call.path.removeprefix(CIRCLE), call.method
    direction = "add" if m == "POST" else "remove" if m == "DELETE" else m.lower()
    if path == "/community_members" and m == "POST":
        return _param(call, "email"), ("circle", "member", "create")
    if path == "/space_members":
        return _param(call, "email"), ("circle", "spaces", _int(_param(call, "space_id")), direction)
    if path == "/space_group_members":
        return _param(call, "email"), ("circle", "space_groups", _int(_param(call, "space_group_id")), direction)
    if path == "/tagged_members":
        return _param(call, "user_email"), ("circle", "member_tags", _int(_param(call, "member_tag_id")), direction)
    if path.startswith("/access_groups/") and path.endswith("/community_members"):
        return _param(call, "email"), ("circle", "access_groups", _int(path.split("/")[2]), direction)
    return None, ("circle", "other", m, path)


def kit_effect(call: Call, subscriber_emails: dict[int, str]) -> tuple[str | None, tuple[Any, ...]] | None:
    parts, m = call.path.strip("/").split("/"), call.method
    if parts[:2] == ["v4", "subscribers"] and len(parts) == 2 and m == "POST":
        kind = "create" if call.status == 201 else "update"
        return _param(call, "email_address"), ("kit", "subscriber", kind)
    if parts[:2] == ["v4", "subscribers"] and len(parts) == 3 and m == "PUT":
        return subscriber_emails.get(_int(parts[2]) or -1), ("kit", "subscriber", "update")
    if parts[:2] == ["v4", "tags"] and len(parts) >= 4:
        tag = _int(parts[2])
        if m == "POST" and len(parts) == 4:
            return _param(call, "email_address"), ("kit", "tags", tag, "add")
        if m == "DELETE" and len(parts) == 5:
            return subscriber_emails.get(_int(parts[4]) or -1), ("kit", "tags", tag, "remove")
        if m == "DELETE":
            return _param(call, "email_address"), ("kit", "tags", tag, "remove")
    if parts[:2] == ["v4", "sequences"] and m == "POST":
        return _param(call, "email_address"), ("kit", "sequences", _int(parts[2]), "add")
    return None, ("kit", "other", m, call.path)


# ---- the check -----------------------------------------------------------------------------


def verify(scenario: Scenario, fakes: dict[str, FakeServer], stats: SendStats, timeline: Timeline,
           deliveries: int, check_time: float) -> Report:
    r = Report(events=len(scenario.events), deliveries=deliveries, posts=stats.attempts)
    r.answers = Counter(stats.answers)
    if timeline.db_window is not None:
        lo, hi = timeline.db_window
        start = timeline.started
        r.answers_during_db_restart = Counter(a for t, a in stats.non_2xx if lo - 5 <= t - start <= hi + 5)
    if timeline.drained is not None:
        r.drain_seconds = max(0.0, timeline.drained - timeline.chaos_ended)
    by_email: dict[str, Person] = {e.lower(): p for p in scenario.people for e in p.emails}
    by_cus = {p.cus: p for p in scenario.people}
    ids = {e["id"] for e in scenario.events}

    # Events: accepted means stored, exactly once, and processed.
    r.accepted = len(stats.accepted)
    r.not_accepted = len(ids - stats.accepted)
    stored = set(Event.objects.values_list("event_id", flat=True))
    lost = stats.accepted - stored
    r.lost = len(lost)
    r.details["lost events"] += sorted(lost)
    r.details["stored events nobody sent"] += sorted(stored - ids)
    twice = list(Event.objects.values("event_id").annotate(n=Count("id")).filter(n__gt=1).values_list("event_id", flat=True))
    r.stored_twice = len(twice)
    unprocessed = Event.objects.exclude(status=Event.PROCESSED)
    r.not_processed = unprocessed.count()
    r.details["events not processed"] += [f"{e.event_id} {e.type} {e.status} {e.status_reason}" for e in unprocessed[:50]]

    # Jobs.
    r.jobs = Counter({(row["kind"], row["state"]): row["n"]
                      for row in Job.objects.values("kind", "state").annotate(n=Count("id"))})
    not_final = Job.objects.exclude(state__in=["succeeded", "cancelled"])
    r.jobs_not_final = not_final.count()
    r.not_final = Counter({(row["kind"], row["state"], row["reason_code"]): row["n"]
                           for row in not_final.values("kind", "state", "reason_code").annotate(n=Count("id"))})
    r.details["jobs not final"] += [f"job {j.pk} {j.kind} {j.state} {j.reason_code}: {j.last_error[:200]}"
                                    for j in not_final.order_by("pk")[:50]]
    database_errors = [j for j in not_final.filter(state="needs_review", reason_code="internal_error")
                       if j.last_error.startswith(("OperationalError", "InterfaceError", "DatabaseError"))]
    r.explained["jobs_not_final"]["A"] += len(database_errors)
    bug_a_events = {j.event_id for j in database_errors if j.event_id}
    r.explained["not_processed"]["A"] += unprocessed.filter(pk__in=bug_a_events).count()
    from frontdesk.ledger.models import Attempt

    r.attempts = Counter({f"{row['job__provider']}:{row['outcome'] or 'unfinished'}": row["n"] for row in
                          Attempt.objects.values("job__provider", "outcome").annotate(n=Count("id"))})

    # Side effects at the fakes: state-changing calls per customer and target, against what
    # the customer's true lifecycle justifies.
    kit_state = fakes["kit"].state()
    subscriber_emails = {s["id"]: s["email_address"].lower() for s in kit_state["subscribers"]}
    effects: dict[tuple[int, tuple[Any, ...]], list[Call]] = defaultdict(list)
    for name in ("circle", "kit", "stripe"):
        for call in list(fakes[name].calls):
            r.provider_calls[name] += 1
            if call.fault:
                r.faults[name] += 1
            if not call.changed or name == "stripe":
                continue
            email, key = circle_effect(call) if name == "circle" else kit_effect(call, subscriber_emails)
            person = by_email.get(str(email or "").lower())
            if person is None:
                r.duplicated_side_effects += 1
                r.details["changed calls for nobody in the scenario"].append(f"{name} {call.method} {call.path} {email}")
                continue
            effects[(person.idx, key)].append(call)
    allowed_by_person: dict[int, dict[tuple[Any, ...], int]] = {}
    for (idx, key), calls in sorted(effects.items(), key=lambda kv: kv[0][0]):
        person = scenario.people[idx]
        if idx not in allowed_by_person:
            allowed_by_person[idx] = scenario.allowed_changes(person, check_time)
        allowed = allowed_by_person[idx].get(key, 0)
        if len(calls) > allowed:
            r.duplicated_side_effects += len(calls) - allowed
            r.details["duplicated side effects"].append(
                f"{person.cus} ({person.archetype}) {key}: {len(calls)} changed calls, lifecycle allows {allowed}; "
                + ", ".join(f"{c.method} {c.status}{'/' + c.fault if c.fault else ''}" for c in calls))

    # Customers: one row each, the right e-mail, the right access; providers as desired.
    circle_members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in fakes["circle"].state()["members"]:
        circle_members[m["email"].lower()].append(m)
    kit_subscribers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in kit_state["subscribers"]:
        kit_subscribers[s["email_address"].lower()].append(s)
    seen_customers: set[int] = set()
    accounts = {(a.customer_id, a.provider): a for a in ProviderAccount.objects.all()}
    customers = {c.stripe_customer_id: c for c in Customer.objects.all()}
    for c in Customer.objects.all():
        person = by_cus.get(c.stripe_customer_id or "") or by_email.get(c.email)
        if person is None or c.stripe_customer_id != person.cus:
            r.duplicate_records += 1
            r.details["customers not matching a scenario customer"].append(
                f"customer {c.pk} {c.email} {c.stripe_customer_id}")
    for person in scenario.people:
        expected_names = person.access(check_time)
        c = customers.get(person.cus)
        if c is None:
            if expected_names or any(e["type"] != "customer.updated" for e in person.events):
                r.wrong_access += 1
                r.details["customers missing"].append(f"{person.cus} ({person.archetype})")
            continue
        seen_customers.add(c.pk)
        names = set(c.active_entitlements().values_list("name", flat=True))
        if names != expected_names:
            r.wrong_access += 1
            ids_of_person = [e["id"] for e in person.events]
            if Event.objects.filter(event_id__in=ids_of_person, pk__in=bug_a_events).exists():
                r.explained["wrong_access"]["A"] += 1
            r.details["wrong access"].append(
                f"{person.cus} ({person.archetype}): has {sorted(names)}, lifecycle says {sorted(expected_names)}")
        if c.email != person.final_email.lower():
            r.wrong_email += 1
            final_change = [e["id"] for e in person.events if e["type"] == "customer.updated"
                            and e["data"]["object"].get("email") == person.final_email]
            if Event.objects.filter(event_id__in=final_change, status_reason="customer_unknown").exists():
                r.explained["wrong_email"]["C"] += 1
            r.details["wrong e-mail"].append(
                f"{person.cus} ({person.archetype}): {c.email}, Stripe says {person.final_email} "
                f"(changes at {[t - scenario.t0 for t, _ in person.email_changes]} s)")
        members = [m for e in person.emails for m in circle_members.get(e.lower(), [])]
        subscribers = [s for e in person.emails for s in kit_subscribers.get(e.lower(), [])]
        if len(members) > 1 or len(subscribers) > 1:
            r.duplicate_records += max(0, len(members) - 1) + max(0, len(subscribers) - 1)
            r.details["duplicate provider records"].append(
                f"{person.cus}: Circle members {[m['email'] for m in members]}, "
                f"Kit subscribers {[s['email_address'] for s in subscribers]}")
        # The brief's divergence: provider state vs desired_state(customer).
        desired = desired_state(c)
        circle_account = accounts.get((c.pk, "circle"))
        member_email = (circle_account.email if circle_account and circle_account.email else c.email).lower()
        member = next(iter(circle_members.get(member_email, [])), None)
        problems = []
        for kind, key in (("spaces", "space_ids"), ("space_groups", "space_group_ids"),
                          ("member_tags", "member_tag_ids"), ("access_groups", "access_group_ids")):
            have = set(member[key]) if member else set()
            if have != set(desired["circle"][kind]):
                problems.append(f"circle {kind} {sorted(have)} ≠ {sorted(desired['circle'][kind])}")
        subscriber = next(iter(kit_subscribers.get(c.email, [])), None)
        tags = set(subscriber["tag_ids"]) if subscriber else set()
        if tags != set(desired["kit"]["tags"]):
            problems.append(f"kit tags {sorted(tags)} ≠ {sorted(desired['kit']['tags'])}")
        sequences = set(subscriber["sequence_ids"]) if subscriber else set()
        if not set(desired["kit"]["sequences"]) <= sequences:
            problems.append(f"kit sequences {sorted(sequences)} lack {sorted(desired['kit']['sequences'])}")
        fields = {k: v for k, v in (subscriber["fields"] if subscriber else {}).items() if v not in (None, "")}
        if fields != desired["kit"]["fields"]:
            problems.append(f"kit fields {fields} ≠ {desired['kit']['fields']}")
        if problems:
            r.divergent += 1
            bug = _divergence_bug(c, problems, accounts, member, subscriber)
            if bug:
                r.explained["divergent"][bug] += 1
                problems.append(f"explained by bug {bug}")
            elif len(r.details["traces of unexplained divergences"]) < 40:
                r.details["traces of unexplained divergences"] += _trace(person, c, effects, scenario.t0)
            r.details["divergent customers"].append(f"{person.cus} ({person.archetype}): " + "; ".join(problems))
    return r


def _divergence_bug(c: Customer, problems: list[str], accounts: dict[tuple[int, str], ProviderAccount],
                    member: dict[str, Any] | None, subscriber: dict[str, Any] | None) -> str | None:
    """Which known bug left this customer's providers behind, judging by its footprint:
    B when the provider holds state that frontdesk's own record of what it applied does not
    know about (a write whose answer was lost, never undone); D when the provider matches
    that record but no sync followed the customer's last expiry."""
    from frontdesk.customers.models import EntitlementChange

    bugs = set()
    for provider in {p.split(" ", 1)[0] for p in problems}:
        account = accounts.get((c.pk, provider))
        applied = account.applied if account else {}
        if provider == "circle":
            have = {kind: set(member[key]) if member else set() for kind, key in (
                ("spaces", "space_ids"), ("space_groups", "space_group_ids"),
                ("member_tags", "member_tag_ids"), ("access_groups", "access_group_ids"))}
            known = {kind: set(applied.get(kind, [])) for kind in have}
        else:
            fields = {k: v for k, v in (subscriber["fields"] if subscriber else {}).items() if v not in (None, "")}
            have = {"tags": set(subscriber["tag_ids"]) if subscriber else set(), "fields": fields}
            known = {"tags": set(applied.get("tags", [])),
                     "fields": {k: v for k, v in applied.get("fields", {}).items() if v not in (None, "")}}
        if any(have[k] != known[k] and (not isinstance(have[k], set) or have[k] - known[k]) for k in have):
            bugs.add("B")
            continue
        expiries = list(EntitlementChange.objects.filter(customer=c, cause="expiry").order_by("at")
                        .values_list("at", flat=True))
        if len(expiries) >= 2 and not Job.objects.filter(customer=c, provider=provider, created_at__gte=expiries[-1]
                                                          ).exists():
            bugs.add("D")
            continue
        return None
    return sorted(bugs)[0] if bugs else None


def _trace(person: Person, c: Customer, effects: dict[tuple[int, tuple[Any, ...]], list[Call]], t0: int) -> list[str]:
    """What happened to one customer, in order: entitlement changes, jobs, changed provider calls."""
    from frontdesk.customers.models import EntitlementChange

    lines = [f"{person.cus} customer {c.pk} accounts "
             + "; ".join(f"{a.provider}: {a.external_id or '-'} {a.applied}" for a in c.provider_accounts.all())]
    rows: list[tuple[float, str]] = []
    for ch in EntitlementChange.objects.filter(customer=c):
        rows.append((ch.at.timestamp(), f"entitlement {ch.name} {ch.before or '-'}→{ch.after} ({ch.cause})"))
    for j in Job.objects.filter(customer=c):
        rows.append((j.created_at.timestamp(), f"job {j.pk} {j.kind} queued ({j.idempotency_key}) → {j.state} "
                                               f"after {j.attempts} attempt(s) at "
                                               f"{j.finished_at.timestamp() - t0 if j.finished_at else 0:.1f}"))
        for a in j.attempt_rows.all():
            rows.append((a.started_at.timestamp(), f"  attempt {a.number} of job {j.pk} by {a.worker}: "
                                                   f"{a.outcome or 'unfinished'} {a.reason_code}"))
    for (idx, key), calls in effects.items():
        if idx == person.idx:
            rows += [(call.at, f"  call {key} → {call.status} {call.fault or ''}") for call in calls]
    return lines + [f"{t - t0:8.1f} s {text}" for t, text in sorted(rows)]
