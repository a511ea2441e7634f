"""Sign-in, throttled per client address through the database (shared by every web process)."""

from __future__ import annotations

import math

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from frontdesk.ops.throttle import hit
from frontdesk.intake.throttling import client_ip

LOGIN_LIMIT, LOGIN_WINDOW = 10, 300  # sign-in attempts per client address per 5 minutes

_login = auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        # The client's address: behind a proxy in FRONTDESK_TRUSTED_PROXIES, from X-Forwarded-For.
        ip = client_ip(request) or "unknown"
        wait = hit(f"login:{ip}", LOGIN_LIMIT, LOGIN_WINDOW)
        if wait is not None:
            seconds = math.ceil(wait)
            response = render(request, "web/429.html", {"seconds": seconds}, status=429)
            response["Retry-After"] = str(seconds)
            return response
    return _login(request)


logout = auth_views.LogoutView.as_view()
