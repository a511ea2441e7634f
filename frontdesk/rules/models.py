from __future__ import annotations

from django.db import models


class RulesVersion(models.Model):
    """One loaded rules file. Immutable: a change is a new version, so every decision can name
    the exact rules it was made under."""

    number = models.PositiveIntegerField(unique=True)
    content = models.TextField()
    content_hash = models.CharField(max_length=64)
    parsed = models.JSONField()
    source = models.CharField(max_length=500)
    loaded_by = models.CharField(max_length=150, default="cli")
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"rules v{self.number}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("Rules versions are immutable; load a new version instead.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def current(cls) -> RulesVersion | None:
        return cls.objects.order_by("-number").first()
