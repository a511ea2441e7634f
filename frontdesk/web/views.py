from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from frontdesk.ops.doctor import ERROR, WARNING, run_checks
from frontdesk.web.roles import role_required


@role_required("viewer")
def home(request: HttpRequest) -> HttpResponse:
    return redirect("web-doctor")


@role_required("operator")
def doctor(request: HttpRequest) -> HttpResponse:
    findings = run_checks()
    return render(request, "web/doctor.html", {
        "findings": findings,
        "errors": sum(f.level == ERROR for f in findings),
        "warnings": sum(f.level == WARNING for f in findings),
    })
