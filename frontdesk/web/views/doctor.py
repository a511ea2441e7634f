from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from frontdesk.ops.doctor import ERROR, WARNING, run_checks
from frontdesk.web.decorators import page


@page("operator")
def doctor(request: HttpRequest) -> HttpResponse:
    """The same checks as `frontdesk doctor`. Operator and up: it calls the providers."""
    findings = run_checks()
    return render(request, "web/doctor.html", {
        "findings": findings,
        "errors": sum(f.level == ERROR for f in findings),
        "warnings": sum(f.level == WARNING for f in findings),
    })
