"""The shared machinery: call log, faults, rate limits, control API, reset, runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from frontdesk.fakes import FakeCircle, FakeKit, start_all

from .conftest import CIRCLE_AUTH, KIT_AUTH

SPACES = "/api/admin/v2/spaces"
REPO = Path(__file__).resolve().parents[2]


def test_it_serves_on_an_ephemeral_port_and_stops() -> None:
    fake = FakeCircle().start()
    assert fake.url.startswith("http://127.0.0.1:") and not fake.url.endswith("/")
    assert httpx.get(fake.url + SPACES, headers=CIRCLE_AUTH).status_code == 200
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(fake.url + SPACES, headers=CIRCLE_AUTH, timeout=1)


def test_it_records_calls_with_headers_body_and_auth_scheme(circle: FakeCircle) -> None:
    httpx.post(circle.url + "/api/admin/v2/space_members?x=1", headers=CIRCLE_AUTH,
               json={"email": "a@example.com", "space_id": 1})
    call = circle.calls[-1]
    assert (call.method, call.path, call.query, call.status) == (
        "POST", "/api/admin/v2/space_members", {"x": ["1"]}, 404)
    assert call.body == {"email": "a@example.com", "space_id": 1}
    assert json.loads(call.raw_body) == call.body
    assert call.headers["authorization"] == "Token circle-test-token"  # nothing redacted
    assert (call.auth_scheme, call.changed, call.fault) == ("Token", False, None)
    assert call.at == pytest.approx(time.time(), abs=5)


def test_it_parses_form_bodies(kit: FakeKit) -> None:
    httpx.post(kit.url + "/v4/tags", headers=KIT_AUTH, data={"name": "paid"})
    assert kit.calls[-1].body == {"name": "paid"}
    assert kit.calls[-1].status == 201


def test_it_serves_the_call_log_over_http_without_control_calls(circle: FakeCircle) -> None:
    for _ in range(3):
        httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH)
    everything = httpx.get(circle.url + "/_fake/calls").json()
    assert [c["path"] for c in everything["calls"]] == [SPACES] * 3
    assert everything["calls"][0]["auth_scheme"] == "Token"
    assert len(httpx.get(circle.url + "/_fake/calls", params={"since": 2}).json()["calls"]) == 1
    assert len(circle.calls) == 3  # control requests are not provider calls


# ---- faults --------------------------------------------------------------------------------

def test_it_answers_a_fault_status_with_the_provider_body_and_retry_after(
        circle: FakeCircle) -> None:
    circle.fail(503, retry_after=4)
    r = httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH)
    assert (r.status_code, r.headers["retry-after"]) == (503, "4")
    assert r.json()["success"] is False
    assert (circle.calls[-1].status, circle.calls[-1].fault) == (503, "status")


def test_it_answers_a_kit_429_fault_as_plain_text_without_retry_after(kit: FakeKit) -> None:
    kit.fail(429)
    r = httpx.get(kit.url + "/v4/tags", headers=KIT_AUTH)
    assert (r.status_code, r.text) == (429, "Retry later")
    assert "retry-after" not in r.headers


def test_it_can_answer_a_custom_fault_body(circle: FakeCircle) -> None:
    circle.fail(502, body="<html>Bad gateway</html>", content_type="text/html")
    r = httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH)
    assert (r.status_code, r.text) == (502, "<html>Bad gateway</html>")
    assert r.headers["content-type"] == "text/html"


def test_it_limits_a_fault_to_count(circle: FakeCircle) -> None:
    circle.fail(500, count=2)
    statuses = [httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code
                for _ in range(3)]
    assert statuses == [500, 500, 200]


def test_it_limits_a_fault_to_seconds(circle: FakeCircle) -> None:
    circle.fail(500, seconds=0.3)
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 500
    time.sleep(0.35)
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 200


def test_it_matches_faults_by_path_and_method_first_rule_winning(circle: FakeCircle) -> None:
    circle.fail(502, path="/api/admin/v2/space_members", method="post")
    circle.fail(503, path="/api/admin/v2/space")
    base = circle.url + "/api/admin/v2"
    assert httpx.post(base + "/space_members", headers=CIRCLE_AUTH, json={}).status_code == 502
    assert httpx.get(base + "/space_members", headers=CIRCLE_AUTH).status_code == 503
    assert httpx.get(base + "/community_members", headers=CIRCLE_AUTH).status_code == 200


def test_it_adds_latency_then_answers_normally(circle: FakeCircle) -> None:
    circle.fail(latency=0.3, count=1)
    started = time.monotonic()
    r = httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH)
    assert r.status_code == 200 and time.monotonic() - started >= 0.3
    assert circle.calls[-1].fault == "latency"


def test_it_holds_the_connection_on_timeout(circle: FakeCircle) -> None:
    circle.fail(timeout=True, count=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH, timeout=0.3)
    assert (circle.calls[-1].status, circle.calls[-1].fault) == (0, "timeout")
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 200


def test_it_commits_then_times_out(circle: FakeCircle) -> None:
    circle.fail(commit_then_timeout=True, path="/api/admin/v2/community_members",
                method="POST", count=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(circle.url + "/api/admin/v2/community_members", headers=CIRCLE_AUTH,
                   json={"email": "a@example.com"}, timeout=0.3)
    assert circle.member("a@example.com") is not None  # the create happened
    call = circle.calls[-1]
    assert (call.status, call.changed, call.fault) == (201, True, "commit_then_timeout")
    r = httpx.get(circle.url + "/api/admin/v2/community_members/search", headers=CIRCLE_AUTH,
                  params={"email": "a@example.com"})
    assert r.status_code == 200


def test_it_can_reset_the_connection(circle: FakeCircle) -> None:
    circle.fail(reset_connection=True, count=1)
    with pytest.raises(httpx.TransportError):
        httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH, timeout=2)
    assert circle.calls[-1].fault == "reset_connection"


def test_it_stops_promptly_while_a_timeout_holds_a_connection() -> None:
    fake = FakeCircle().start()
    fake.fail(timeout=True)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(fake.url + SPACES, headers=CIRCLE_AUTH, timeout=0.2)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2


def test_it_manages_faults_over_http(circle: FakeCircle) -> None:
    added = httpx.post(circle.url + "/_fake/faults", json={"status": 500, "count": 1})
    assert added.status_code == 201 and added.json()["faults"][0]["status"] == 500
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 500
    httpx.post(circle.url + "/_fake/faults", json={"status": 500})
    assert httpx.delete(circle.url + "/_fake/faults").status_code == 200
    assert httpx.get(circle.url + "/_fake/faults").json() == {"faults": []}
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 200
    bad = httpx.post(circle.url + "/_fake/faults", json={"statuss": 500})
    assert bad.status_code == 400 and "statuss" in bad.json()["error"]


def test_a_fault_with_a_probability_hits_that_share_of_requests_and_spares_the_rest(
        circle: FakeCircle) -> None:
    from frontdesk.fakes import base

    base._random.seed(7)
    circle.fail(503, probability=0.25, count=1000)  # `count` is spent only by requests it hits
    circle.fail(502, path="/nowhere")  # never matches: spared requests are answered normally
    statuses = [httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code
                for _ in range(200)]
    assert set(statuses) == {200, 503}
    assert 25 <= statuses.count(503) <= 75  # 50 expected; bounds are many sigmas wide
    assert circle.faults()[0]["count"] == 1000 - statuses.count(503)
    assert [c.fault for c in circle.calls].count("status") == statuses.count(503)


def test_a_spared_request_goes_on_to_the_next_rule(circle: FakeCircle) -> None:
    circle.fail(503, probability=0.0)
    circle.fail(429, probability=1.0, count=1)
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 429
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 200


def test_probability_is_set_over_http_and_checked(circle: FakeCircle) -> None:
    added = httpx.post(circle.url + "/_fake/faults", json={"status": 500, "probability": 1})
    assert added.status_code == 201 and added.json()["faults"][0]["probability"] == 1.0
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 500
    for bad in (1.5, -0.1, "half", True):
        r = httpx.post(circle.url + "/_fake/faults", json={"status": 500, "probability": bad})
        assert r.status_code == 400 and "probability" in r.json()["error"]
    with pytest.raises(ValueError):
        circle.fail(500, probability=2)


# ---- rate limits, reset, config ------------------------------------------------------------

def test_it_records_rate_limited_calls_and_recovers_after_the_window() -> None:
    with FakeCircle(rate_limit=(3, 0.4)) as fake:
        statuses = [httpx.get(fake.url + SPACES, headers=CIRCLE_AUTH).status_code
                    for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        assert [c.status for c in fake.calls] == statuses
        time.sleep(0.45)
        assert httpx.get(fake.url + SPACES, headers=CIRCLE_AUTH).status_code == 200


def test_it_changes_options_over_http_and_reset_restores_them(circle: FakeCircle) -> None:
    r = httpx.post(circle.url + "/_fake/config", json={"rate_limit": [1, 60], "plan_gate": True})
    assert r.json()["rate_limit"] == [1, 60]
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 403
    assert httpx.post(circle.url + "/_fake/config", json={"nope": 1}).status_code == 400
    bad_value = httpx.post(circle.url + "/_fake/config", json={"duplicate_create": "409"})
    assert bad_value.status_code == 400 and "duplicate_create" in bad_value.json()["error"]
    httpx.post(circle.url + "/_fake/reset")
    assert httpx.get(circle.url + "/_fake/config").json()["plan_gate"] is False
    assert httpx.get(circle.url + SPACES, headers=CIRCLE_AUTH).status_code == 200


def test_it_resets_state_calls_faults_and_reapplies_the_initial_seed() -> None:
    seed = {"spaces": [{"id": 1, "name": "General"}], "members": [{"email": "a@example.com"}]}
    with FakeCircle(seed=seed) as fake:
        fake.add_member("b@example.com")
        fake.fail(500, path="/nowhere")
        httpx.get(fake.url + SPACES, headers=CIRCLE_AUTH)
        assert httpx.post(fake.url + "/_fake/reset").status_code == 200
        assert (fake.calls, fake.faults()) == ([], [])
        assert fake.member("a@example.com") is not None
        assert fake.member("b@example.com") is None
        state = httpx.get(fake.url + "/_fake/state").json()
        assert [s["name"] for s in state["spaces"]] == ["General"]


def test_it_answers_404_for_unknown_control_routes(circle: FakeCircle) -> None:
    assert httpx.get(circle.url + "/_fake/nothing").status_code == 404


# ---- runner --------------------------------------------------------------------------------

def test_start_all_starts_three_fakes() -> None:
    fakes = start_all()
    try:
        assert set(fakes) == {"circle", "kit", "stripe"}
        for fake in fakes.values():
            assert httpx.get(fake.url + "/_fake/calls").status_code == 200
    finally:
        for fake in fakes.values():
            fake.stop()


def test_the_module_prints_urls_and_stops_on_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"kit": {"tags": [{"id": 1, "name": "paid"}]}}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "frontdesk.fakes", "--seed", str(seed)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        assert set(urls) == {"circle", "kit", "stripe"}
        tags = httpx.get(urls["kit"] + "/v4/tags", headers=KIT_AUTH).json()["tags"]
        assert [t["name"] for t in tags] == ["paid"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
