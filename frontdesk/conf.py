"""Reading configuration from the environment.

Every secret can also come from a file named by ``NAME_FILE`` (container secrets). Errors name
the variable and say what is wrong, so a failed start tells the operator what to fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from environs import Env, EnvError


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


env = Env()


def secret(name: str, default: str = "") -> str:
    """Return the value of ``name``, or of the file named by ``name_FILE``.

    Setting both is an error: which one wins would be a guess.
    """
    file_var = f"{name}_FILE"
    direct = os.environ.get(name)
    path = os.environ.get(file_var)
    if direct is not None and path is not None:
        raise ConfigError(f"{name} and {file_var} are both set; set only one of them.")
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{file_var}: cannot read {path!r} ({exc.strerror}).") from None
    return direct if direct is not None else default


def secret_list(name: str) -> list[str]:
    """A comma-separated list of secrets (for rotation), from ``name`` or ``name_FILE``."""
    return [part.strip() for part in secret(name).split(",") if part.strip()]


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of: {', '.join(choices)}.")
    return value


def number(name: str, default: float, *, minimum: float = 0.0) -> float:
    try:
        value = env.float(name, default)
    except EnvError:
        raise ConfigError(f"{name}={os.environ.get(name)!r} is not a number.") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}.")
    return value


def integer(name: str, default: int, *, minimum: int = 0) -> int:
    try:
        value = env.int(name, default)
    except EnvError:
        raise ConfigError(f"{name}={os.environ.get(name)!r} is not a whole number.") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}.")
    return value


def flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false.")


def url(name: str, default: str) -> str:
    value = os.environ.get(name, default).strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name}={value!r} must start with http:// or https://.")
    return value


def rate(name: str, default: str) -> tuple[int, float]:
    """A rate limit written as ``REQUESTS/SECONDS``, e.g. ``120/60``."""
    raw = os.environ.get(name, default).strip()
    try:
        count, _, seconds = raw.partition("/")
        parsed = int(count), float(seconds)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must look like REQUESTS/SECONDS, e.g. 120/60.") from None
    if parsed[0] < 1 or parsed[1] <= 0:
        raise ConfigError(f"{name}={raw!r} needs at least 1 request over a positive window.")
    return parsed
