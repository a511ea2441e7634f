"""Configuration from the environment: clear errors, and production refuses unsafe settings."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from frontdesk import conf
from frontdesk.conf import ConfigError

from .conftest import PYTHON


def check(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("FRONTDESK_", "STRIPE_", "CIRCLE_", "KIT_", "DATABASE_URL"))}
    base["FRONTDESK_VAR_DIR"] = str(tmp_path)
    return subprocess.run([PYTHON, "-m", "frontdesk.cli", "check"], env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_production_refuses_missing_secrets_and_names_each(tmp_path: Path) -> None:
    result = check({"FRONTDESK_ENV": "production", "FRONTDESK_DEBUG": "true"}, tmp_path)
    assert result.returncode == 2
    for name in ("FRONTDESK_SECRET_KEY", "FRONTDESK_DEBUG", "STRIPE_WEBHOOK_SECRET", "FRONTDESK_ALLOWED_HOSTS"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_production_starts_when_configured(tmp_path: Path) -> None:
    secret_file = tmp_path / "whsec"
    secret_file.write_text("whsec_abc\n")
    result = check({"FRONTDESK_ENV": "production", "FRONTDESK_SECRET_KEY": "x" * 50,
                    "STRIPE_WEBHOOK_SECRET_FILE": str(secret_file), "FRONTDESK_ALLOWED_HOSTS": "example.com"},
                   tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_bad_value_names_the_variable(tmp_path: Path) -> None:
    result = check({"KIT_RATE_LIMIT": "lots"}, tmp_path)
    assert result.returncode == 2
    assert "KIT_RATE_LIMIT='lots' must look like REQUESTS/SECONDS" in result.stderr
    result = check({"DATABASE_URL": "mysql://x@y/z"}, tmp_path)
    assert "only SQLite and PostgreSQL" in result.stderr


def test_secrets_come_from_a_file_or_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "s"
    f.write_text("from-file\n")
    monkeypatch.setenv("X_SECRET_FILE", str(f))
    assert conf.secret("X_SECRET") == "from-file"
    monkeypatch.setenv("X_SECRET", "direct")
    with pytest.raises(ConfigError, match="both set"):
        conf.secret("X_SECRET")
    monkeypatch.delenv("X_SECRET_FILE")
    assert conf.secret("X_SECRET") == "direct"
    monkeypatch.setenv("Y_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="Y_SECRET_FILE: cannot read"):
        conf.secret("Y_SECRET")


def test_webhook_secrets_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b,")
    assert conf.secret_list("STRIPE_WEBHOOK_SECRET") == ["whsec_a", "whsec_b"]


@pytest.mark.parametrize(("raw", "ok"), [("true", True), ("0", False), ("maybe", None)])
def test_flags_are_strict(raw: str, ok: bool | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_FLAG", raw)
    if ok is None:
        with pytest.raises(ConfigError, match="SOME_FLAG='maybe' is not a boolean"):
            conf.flag("SOME_FLAG", False)
    else:
        assert conf.flag("SOME_FLAG", False) is ok


def test_the_deploy_checklist_passes_in_production_settings(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items()
              if not k.startswith(("FRONTDESK_", "STRIPE_", "CIRCLE_", "KIT_", "DATABASE_URL"))},
           "FRONTDESK_VAR_DIR": str(tmp_path), "FRONTDESK_ENV": "production", "FRONTDESK_SECRET_KEY": "k" * 20 + "q1w2e3r4t5y6u7i8o9p0" * 3,
           "STRIPE_WEBHOOK_SECRET": "whsec_abc", "FRONTDESK_ALLOWED_HOSTS": "frontdesk.example.com"}
    result = subprocess.run([PYTHON, "-m", "frontdesk.cli", "check", "--deploy", "--fail-level", "WARNING"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
