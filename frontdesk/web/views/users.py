"""Users of the admin app (admins only): create with a role, change a role, deactivate or
reactivate. Every change is audited. Nobody can lock out the last active admin."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from frontdesk.audit.models import record
from frontdesk.web.decorators import action, actor, form_page
from frontdesk.web.forms import RoleForm, UserCreateForm
from frontdesk.web.roles import role_of, set_role

User = get_user_model()


def _active_admins() -> int:
    admin = Group.objects.filter(name="admin").first()
    return User.objects.filter(is_active=True).filter(Q(is_superuser=True) | Q(groups=admin)).distinct().count()


@form_page("admin")
def users(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = User.objects.create_user(data["username"], data.get("email") or "", data["password"])
        set_role(user, data["role"])
        record(actor(request), "user_created", user.get_username(), after={"role": data["role"]})
        messages.success(request, f"User {user.get_username()} created as {data['role']}.")
        return redirect("web-users")
    rows: list[dict[str, Any]] = [{"user": u, "role": role_of(u) if u.is_active else None}
                                  for u in User.objects.order_by("username").prefetch_related("groups")[:500]]
    return render(request, "web/users.html", {"form": form, "rows": rows, "roles": RoleForm().fields["role"].choices})


@action("admin")
def user_role(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose viewer, operator or admin.")
        return redirect("web-users")
    before, after = role_of(user), form.cleaned_data["role"]
    if before == "admin" and after != "admin" and user.is_active and _active_admins() <= 1:
        messages.error(request, "That is the last active admin; make another admin first.")
        return redirect("web-users")
    if user.is_superuser and after != "admin":
        messages.error(request, f"{user.get_username()} is a superuser and stays admin; change that with the Django shell.")
        return redirect("web-users")
    set_role(user, after)
    record(actor(request), "user_role_changed", user.get_username(), before={"role": before}, after={"role": after})
    messages.success(request, f"{user.get_username()} is now {after}.")
    return redirect("web-users")


@action("admin")
def user_active(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    activate = request.POST.get("active") == "1"
    if not activate:
        if user.pk == request.user.pk:
            messages.error(request, "You cannot deactivate yourself.")
            return redirect("web-users")
        if role_of(user) == "admin" and _active_admins() <= 1:
            messages.error(request, "That is the last active admin; make another admin first.")
            return redirect("web-users")
    user.is_active = activate
    user.save(update_fields=["is_active"])
    record(actor(request), "user_activated" if activate else "user_deactivated", user.get_username(),
           before={"active": not activate}, after={"active": activate})
    messages.success(request, f"{user.get_username()} is {'active again' if activate else 'deactivated'}.")
    return redirect("web-users")
