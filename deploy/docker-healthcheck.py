"""Docker HEALTHCHECK for a web container: GET /healthz on the local gunicorn.

Standard library only (the slim image has no curl). The request carries the first name of
FRONTDESK_ALLOWED_HOSTS as its Host header: Django answers 400 to a host name it does not
serve, and 127.0.0.1 usually is not one. /healthz is exempt from the HTTPS redirect.
"""

from __future__ import annotations

import os
import sys
import urllib.request

URL = os.environ.get("FRONTDESK_HEALTHCHECK_URL", "http://127.0.0.1:8000/healthz")


def main() -> int:
    first = os.environ.get("FRONTDESK_ALLOWED_HOSTS", "").split(",")[0].strip().lstrip(".")
    host = first if first and first != "*" else "localhost"
    # No proxy, even if HTTP_PROXY is set for the providers' traffic.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(URL, headers={"Host": host}), timeout=4) as response:
            return 0 if response.status == 200 else 1
    except Exception as exc:  # any failure is "unhealthy"; say why in `docker inspect`
        print(f"{URL}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
