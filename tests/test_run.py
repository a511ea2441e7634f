"""`frontdesk run` on the embedded default: sandbox fakes, web and worker, end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .conftest import PYTHON

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def free_port_block(size: int) -> int:
    """A base port with `size` free ports after it (the sandbox uses three in a row)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + size >= 65535:
            continue
        try:
            for p in range(base, base + size):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port block")


def test_run_serves_the_sandbox_and_a_test_event_reaches_circle_and_kit(tmp_path: Path) -> None:
    base = free_port_block(4)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FRONTDESK_", "STRIPE_", "CIRCLE_", "KIT_", "DATABASE_URL"))}
    env.update(FRONTDESK_VAR_DIR=str(tmp_path), FRONTDESK_SANDBOX_PORT=str(base))
    bind = f"127.0.0.1:{base + 3}"
    proc = subprocess.Popen([PYTHON, "-m", "frontdesk.cli", "run", "--bind", bind, "--web-workers", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{bind}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.3)
        else:
            raise AssertionError("frontdesk run did not become ready")
        sent = subprocess.run(
            [PYTHON, "-m", "frontdesk.cli", "send-test-event", "--email", "Demo@Example.com",
             "--price", "price_community_monthly", "--url", f"http://{bind}/webhooks/stripe"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        assert '"status": "stored"' in sent.stdout

        def calls(port: int) -> list[dict[str, object]]:
            return json.loads(httpx.get(f"http://127.0.0.1:{port}/_fake/calls", timeout=5).text)["calls"]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            circle, kit = calls(base), calls(base + 1)
            if any(c["path"] == "/v4/sequences/6001/subscribers" for c in kit) and any(
                    c["method"] == "POST" and c["path"] == "/api/admin/v2/community_members" for c in circle):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"the event did not reach the fakes: {circle} {kit}")
        create = next(c for c in circle if c["method"] == "POST")
        assert create["body"]["email"] == "demo@example.com"
        assert sorted(create["body"]["space_ids"]) == [1001, 1002]
        assert {c["path"] for c in kit if c["changed"]} == {
            "/v4/subscribers", "/v4/tags/5001/subscribers", "/v4/sequences/6001/subscribers"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert "SANDBOX" in out
    assert proc.returncode == 0, out[-2000:]
