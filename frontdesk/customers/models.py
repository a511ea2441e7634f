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

    ACTIVE, REVOKED = "active", "revoked"
    STATUSES = [(ACTIVE, "active"), (REVOKED, "revoked")]

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="entitlements")
    name = models.CharField(max_length=100)
    source_type = models.CharField(max_length=30)  # checkout_session | subscription | invoice
    source_id = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=STATUSES, default=ACTIVE)
    rules_version = models.ForeignKey("rules.RulesVersion", on_delete=models.PROTECT, related_name="+")
    event_id = models.CharField(max_length=100, blank=True)  # the Stripe event that last changed it
    granted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "name", "source_id"], name="one_entitlement_per_source")
        ]

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
