"""A fake Slack incoming webhook (https://api.slack.com/messaging/webhooks).

Slack answers a webhook POST with plain text, never JSON: ``200 ok`` on success, or a status
with a short error code as the whole body ("Handling errors" on that page). The fake keeps
the messages it accepted in ``messages``; rejected and fault-injected requests are only in
``calls``. Standard library only, like the other fakes.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from .base import ControlError, FakeServer, Request, Response, RouteSpec, json_response

DEFAULT_PATH = "/services/T000/B000/XXXX"

# Status → the error code Slack puts in the body (webhooks page, "Handling errors").
# 429's body is not documented there; "rate_limited" is the Web API's name for it.
ERROR_CODES = {
    400: "invalid_payload",
    403: "invalid_token",
    404: "no_service",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "rollup_error",
}
_CODE_RE = re.compile(r"^[a-z_]+$")

# Block Kit allows at most 50 blocks per message; webhooks reject more than 100 attachments
# ("too_many_attachments" on the webhooks page).
MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100


class FakeSlack(FakeServer):
    """``POST {webhook_path}`` with ``{"text": ..., "blocks": [...]}`` → ``200 ok``.

    Options (``configure()`` / ``POST /_fake/config``; ``reset()`` restores them):
    ``webhook_path`` (other paths answer ``404 no_service``), ``token_revoked``
    (``403 invalid_token``), ``channel_archived`` (``410 channel_is_archived``) and
    ``rate_limit`` (Slack documents 1 message per second per webhook, with short bursts;
    the fake has no limit unless given one, e.g. ``rate_limit=(1, 1.0)``).
    """

    name = "slack"
    CONFIG_KEYS = ("rate_limit", "webhook_path", "token_revoked", "channel_archived")

    def __init__(
        self,
        port: int = 0,
        *,
        path: str = DEFAULT_PATH,
        token_revoked: bool = False,
        channel_archived: bool = False,
        rate_limit: tuple[int, float] | None = None,
    ) -> None:
        _check_path(path)
        super().__init__(
            port, rate_limit=rate_limit, webhook_path=path, token_revoked=token_revoked,
            channel_archived=channel_archived,
        )
        # Shares the server lock, so handlers (which run under it) can notify waiters.
        self._arrived = threading.Condition(self._lock)

    @property
    def webhook_url(self) -> str:
        return self.url + self.webhook_path

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The JSON bodies Slack would have posted, oldest first (a copy)."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool] = lambda m: True, timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first accepted message matching ``predicate``, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in self._messages:
                    if predicate(message):
                        return copy.deepcopy(message)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching Slack message within {timeout}s; got {self._messages!r}"
                    )
                self._arrived.wait(remaining)

    # ---- FakeServer hooks ------------------------------------------------------------------

    def routes(self) -> list[RouteSpec]:
        return [("POST", r"/services/", self._post)]

    def control_routes(self) -> list[RouteSpec]:
        return [("GET", r"/_fake/messages$", lambda req: json_response(200, self.state()))]

    def reset_state(self) -> None:
        self._messages: list[dict[str, Any]] = []

    def seed(self, data: dict[str, Any]) -> dict[str, Any]:
        raise ControlError("the Slack fake has nothing to seed")

    def state(self) -> dict[str, Any]:
        return {"messages": self.messages}

    def configure(self, **options: Any) -> None:
        if "webhook_path" in options:
            _check_path(options["webhook_path"])
        super().configure(**options)

    def error_response(self, status: int, message: str | None = None) -> Response:
        # Plain-text code bodies. Messages that are not codes (e.g. the base class's
        # "Malformed JSON body: ...") become the status's code: Slack says only
        # "invalid_payload".
        if message is None or not _CODE_RE.match(message):
            fallback = "rollup_error" if status >= 500 else "invalid_payload"
            message = ERROR_CODES.get(status, fallback)
        resp = Response(status, message, content_type="text/plain; charset=utf-8")
        if status == 429:
            resp.headers["Retry-After"] = "1"  # a fault's retry_after overrides this
        return resp

    def not_found_response(self, req: Request) -> Response:
        return self.error_response(404, "no_service")

    def rate_limit_key(self, req: Request) -> str:
        return req.path  # the documented limit is per webhook

    def rate_limit_response(self, req: Request) -> Response:
        return self.error_response(429)

    def precheck(self, req: Request) -> Response | None:
        # The webhook URL is the credential: an unknown one is "no_service", a revoked one
        # "invalid_token"; an archived target channel is "channel_is_archived" (410).
        if req.path != self.webhook_path:
            return self.error_response(404, "no_service")
        if self.token_revoked:
            return self.error_response(403, "invalid_token")
        if self.channel_archived:
            return self.error_response(410, "channel_is_archived")
        return None

    # ---- the webhook -----------------------------------------------------------------------

    def _post(self, req: Request) -> Response:
        body = req.body
        # Legacy form encoding: ``payload=<json>`` (still accepted by Slack).
        if isinstance(body, dict) and set(body) == {"payload"} and isinstance(body["payload"], str):
            try:
                body = json.loads(body["payload"])
            except ValueError:
                return self.error_response(400, "invalid_payload")
        error = _validate(body)
        if error is not None:
            return self.error_response(400, error)
        self._messages.append(copy.deepcopy(body))
        self._arrived.notify_all()  # we hold the server lock here (FakeServer._handle)
        return Response(200, "ok", content_type="text/plain; charset=utf-8", changed=True)


def _validate(body: Any) -> str | None:
    """The error code for a body Slack would reject, or None."""
    if not isinstance(body, dict):
        return "invalid_payload"
    text, blocks, attachments = body.get("text"), body.get("blocks"), body.get("attachments")
    if text is not None and not isinstance(text, str):
        return "invalid_payload"
    if blocks is not None:
        # Not in the webhook error list, but what Slack answers for malformed Block Kit.
        if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks
        ):
            return "invalid_blocks"
    if attachments is not None:
        if not isinstance(attachments, list):
            return "invalid_payload"
        if len(attachments) > MAX_ATTACHMENTS:
            return "too_many_attachments"
    # "no_text": the message has no content. Legacy attachments count as content, as on Slack.
    if not (text or blocks or attachments):
        return "no_text"
    return None


def _check_path(path: Any) -> None:
    if not isinstance(path, str) or not path.startswith("/services/"):
        raise ControlError(f"webhook_path must start with /services/, got {path!r}")
