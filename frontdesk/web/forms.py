"""Forms of the admin app. Actions that change access ask for a reason."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password

from frontdesk.web.roles import ROLES

ROLE_CHOICES = [(r, r) for r in ROLES]
MAX_RULES_BYTES = 256 * 1024


class TestEventForm(forms.Form):
    email = forms.EmailField(initial="test@example.com")
    price = forms.CharField(max_length=100, help_text="A Stripe price id the rules map.")

    def __init__(self, *args: Any, prices: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if prices:
            self.fields["price"] = forms.ChoiceField(choices=[(p, p) for p in prices], help_text="Prices the current rules map.")


class OverrideForm(forms.Form):
    action = forms.ChoiceField(choices=[("grant", "Grant"), ("revoke", "Revoke")])
    entitlement = forms.ChoiceField(choices=[])
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 40}))
    expires = forms.DateField(required=False, help_text="Optional: the override ends at the start of this day (UTC).",
                              widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, entitlements: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["entitlement"].choices = [(e, e) for e in entitlements]

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires")
        return datetime.combine(day, time.min, tzinfo=UTC) if day else None


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer")
    password = forms.CharField(widget=forms.PasswordInput, help_text="At least 10 characters; share it privately.")

    def clean_username(self) -> str:
        name = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username=name).exists():
            raise forms.ValidationError("A user with that name exists.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("username"):
            user = get_user_model()(username=data["username"], email=data.get("email", ""))
            try:
                validate_password(data["password"], user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


class RulesForm(forms.Form):
    content = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 18, "cols": 80, "spellcheck": "false"}),
                              help_text="Paste a rules file, or upload one below.")
    file = forms.FileField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_RULES_BYTES:
                raise forms.ValidationError("The file is over 256 KiB; a rules file is a few KiB.")
            try:
                data["content"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
        if not (data.get("content") or "").strip():
            raise forms.ValidationError("Paste the rules or choose a file.")
        data["content"] = data["content"].replace("\r\n", "\n")
        return data
