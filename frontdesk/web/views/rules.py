"""Rules: the current version and its history for everyone; preview and apply for admins.
Applying goes through the same code as `frontdesk rules load` and is audited."""

from __future__ import annotations

import hashlib
from itertools import islice

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from frontdesk.audit.models import record
from frontdesk.rules.loading import load_text
from frontdesk.rules.models import RulesVersion
from frontdesk.rules.preview import apply, effects, semantic_diff, text_diff
from frontdesk.rules.schema import RulesError, parse
from frontdesk.web.decorators import action, actor, form_page, page
from frontdesk.web.forms import RulesForm

MAX_EFFECTS = 200  # customers listed in a preview; the count covers all of them


@page("viewer")
def rules(request: HttpRequest) -> HttpResponse:
    current = RulesVersion.current()
    return render(request, "web/rules.html", {
        "current": current, "versions": RulesVersion.objects.order_by("-number")[:100],
    })


@page("viewer")
def rules_version(request: HttpRequest, number: int) -> HttpResponse:
    version = get_object_or_404(RulesVersion, number=number)
    previous = RulesVersion.objects.filter(number__lt=number).order_by("-number").first()
    return render(request, "web/rules_version.html", {
        "version": version, "previous": previous,
        "semantic": semantic_diff(previous.parsed if previous else None, version.parsed),
        "diff": text_diff(previous.content if previous else "", version.content,
                          f"v{previous.number}" if previous else "(none)", f"v{version.number}"),
    })


def _digest(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


@form_page("admin")
def rules_preview(request: HttpRequest) -> HttpResponse:
    """Paste or upload a rules file; see what it would change. Nothing is stored here."""
    form = RulesForm(request.POST or None, request.FILES or None)
    context: dict[str, object] = {"form": form}
    if request.method == "POST" and form.is_valid():
        content = form.cleaned_data["content"]
        current = RulesVersion.current()
        try:
            new = parse(content, "pasted rules")
        except RulesError as exc:
            context["problems"] = exc.problems
            return render(request, "web/rules_preview.html", context, status=400)
        found = effects(current.parsed if current else None, new)
        listed = list(islice(found, MAX_EFFECTS))
        total = len(listed) + sum(1 for _ in found)
        context.update({
            "content": content, "digest": _digest(content), "current": current,
            "unchanged": current is not None and current.content_hash == _digest(content),
            "semantic": semantic_diff(current.parsed if current else None, new),
            "diff": text_diff(current.content if current else "", content,
                              f"v{current.number}" if current else "(none)", "new"),
            "effects": listed, "total": total, "more": total - len(listed),
        })
    return render(request, "web/rules_preview.html", context)


@action("admin")
def rules_apply(request: HttpRequest) -> HttpResponse:
    """Store the previewed content as the next version and apply it. The digest proves the
    content is the one that was previewed."""
    content = request.POST.get("content", "").replace("\r\n", "\n")
    if not content.strip() or _digest(content) != request.POST.get("digest"):
        messages.error(request, "The rules changed after the preview; preview them again.")
        return redirect("web-rules-preview")
    reason = request.POST.get("reason", "").strip()
    if not reason:
        messages.error(request, "Say why the rules change: it changes access, and the audit log keeps the reason.")
        return redirect("web-rules-preview")
    previous = RulesVersion.current()
    who = actor(request)
    try:
        version, created = load_text(content, f"admin app ({who})", loaded_by=who)
    except RulesError as exc:
        messages.error(request, f"The rules are not valid: {exc}")
        return redirect("web-rules-preview")
    if not created:
        messages.info(request, f"Unchanged: identical to rules v{version.number}.")
        return redirect("web-rules")
    changed = apply(version, previous)
    record(who, "rules_loaded", f"rules:v{version.number}",
           before={"version": previous.number if previous else None},
           after={"version": version.number, "hash": version.content_hash[:12], "customers_changed": len(changed)},
           reason=reason)
    messages.success(request, f"Rules v{version.number} applied: {len(changed)} customer(s) change; "
                              "their providers are being updated.")
    return redirect("web-rules")
