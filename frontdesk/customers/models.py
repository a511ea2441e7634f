from __future__ import annotations

from django.db import models


class Customer(models.Model):
    email = models.CharField(max_length=320, db_index=True)  # stored lower-cased
    name = models.CharField(max_length=200, blank=True)
    stripe_customer_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"customer {self.pk}"

    def active_entitlements(self) -> models.QuerySet[Entitlement]:
        return self.entitlements.filter(status=Entitlement.ACTIVE)


class Entitlement(models.Model):
    """A named right (``community``, ``course-a``) a customer holds because of one source:
    a one-off Checkout Session, a subscription, or (later) a manual override."""

    ACTIVE, SUSPENDED, REVOKED = "active", "suspended", "revoked"
    STATUSES = [(ACTIVE, "active"), (SUSPENDED, "suspended"), (REVOKED, "revoked")]

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="entitlements")
    name = models.CharField(max_length=100)
    # checkout_session | subscription | invoice | stripe_entitlements | override
    source_type = models.CharField(max_length=30)
    source_id = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=STATUSES, default=ACTIVE)
    rules_version = models.ForeignKey("rules.RulesVersion", on_delete=models.PROTECT, related_name="+")
    event_id = models.CharField(max_length=100, blank=True)  # the Stripe event that last changed it
    granted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)  # why it has this status, in words

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "name", "source_id"], name="one_entitlement_per_source")
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="entitlement_expiry")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class ProviderAccount(models.Model):
    """What frontdesk has applied to one customer in one provider, so a sync job only sends
    the difference between this and the desired state (and a repeat sends nothing)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="provider_accounts")
    provider = models.CharField(max_length=20)
    external_id = models.CharField(max_length=100, blank=True)
    email = models.CharField(max_length=320, blank=True)  # the e-mail the provider knows them by
    applied = models.JSONField(default=dict)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "provider"], name="one_account_per_provider")
        ]


class StripeObject(models.Model):
    """The newest known state of one Stripe object (subscription, checkout session, invoice,
    charge, dispute, entitlement summary). Customers' entitlements are derived from these, so
    the order in which Stripe delivered the events does not matter."""

    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=100)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="stripe_objects")
    stripe_customer_id = models.CharField(max_length=100, blank=True, db_index=True)
    link = models.CharField(max_length=100, blank=True, db_index=True)  # payment intent / subscription it belongs to
    data = models.JSONField()
    version_created = models.BigIntegerField()  # the event's `created`, or the time it was fetched
    version_rank = models.SmallIntegerField(default=0)
    version_event = models.CharField(max_length=255, blank=True)
    status_since = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["object_type", "object_id"], name="one_row_per_stripe_object")]


class StripeObjectVersion(models.Model):
    """Every version seen (a few per object), so "past_due since when" comes out the same
    whatever order the versions arrived in."""

    obj = models.ForeignKey(StripeObject, on_delete=models.CASCADE, related_name="versions")
    created = models.BigIntegerField()
    rank = models.SmallIntegerField(default=0)
    event_id = models.CharField(max_length=255)
    status = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["obj", "created", "rank", "event_id"], name="one_version_row")]


class Override(models.Model):
    """Access granted or revoked by hand, with who, why and until when."""

    GRANT, REVOKE = "grant", "revoke"
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="overrides")
    name = models.CharField(max_length=100)
    action = models.CharField(max_length=10, choices=[(GRANT, "grant"), (REVOKE, "revoke")])
    reason = models.TextField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.CharField(max_length=150, blank=True)

    def is_active(self, now: object) -> bool:
        return self.removed_at is None and (self.expires_at is None or self.expires_at > now)  # type: ignore[operator]


class EntitlementChange(models.Model):
    """Append-only history of every change to an entitlement: who or what, when, before, after."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="entitlement_changes")
    name = models.CharField(max_length=100)
    source_id = models.CharField(max_length=100)
    before = models.CharField(max_length=10, blank=True)  # status, "" when it did not exist
    after = models.CharField(max_length=10)
    before_expires = models.DateTimeField(null=True, blank=True)
    after_expires = models.DateTimeField(null=True, blank=True)
    cause = models.CharField(max_length=300)  # event:evt_… / override:12 / rules:v3 / expiry / reconcile:4
    rules_version = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("Entitlement history is append-only.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]
