"""docker-compose.yml, the Dockerfile and .env.production.example, checked without Docker.

There is no Docker engine on the test machines: the compose file is parsed and its
structure checked (services, commands, dependencies, health checks, secrets from
the env file), and the env template must list every setting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from robotrader.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = {"migrate", "web", "worker", "backtest-worker", "beat", "telegram", "discord"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else list(command)


def test_compose_has_every_service_with_its_command(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == APP_SERVICES | {"postgres", "redis"}
    commands = {name: _command(services[name]) for name in APP_SERVICES}
    assert commands["migrate"] == ["robotrader", "migrate"]
    assert commands["web"] == ["robotrader", "web"]
    assert commands["worker"][:2] == ["robotrader", "worker"]
    assert "--beat" not in commands["worker"]  # beat runs once, in its own service
    # Ticks never wait behind a backtest: each kind of work has workers of its own.
    assert commands["worker"][-2:] == ["--queues", "ticks,orders"]
    assert commands["backtest-worker"][:2] == ["robotrader", "worker"]
    assert commands["backtest-worker"][-2:] == ["--queues", "backtests"]
    assert commands["beat"][:4] == ["celery", "-A", "robotrader.worker", "beat"]
    assert commands["telegram"] == ["robotrader", "telegram"]
    assert commands["discord"] == ["robotrader", "discord"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for single in ("beat", "telegram", "discord"):
        assert services[single]["deploy"]["replicas"] == 1


def test_app_services_read_secrets_from_the_env_file_only(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["env_file"] == ".env.production", name
        assert service["build"] == "." and service["image"] == "robotrader:latest"
        environment = service.get("environment") or {}
        assert not any("KEY" in k or "SECRET" in k or "TOKEN" in k for k in environment), name
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"(sk_live|whsec_|postgresql\+asyncpg://\w+:\w+@)", text)


def test_startup_order_and_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in APP_SERVICES - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["interval"], name
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert set(compose["volumes"]) == {"postgres-data", "redis-data"}


def test_env_template_lists_every_setting() -> None:
    template = (ROOT / ".env.production.example").read_text()
    names = set(re.findall(r"^(ROBOTRADER_[A-Z_]+)=", template, re.M))
    expected = {f"ROBOTRADER_{field.upper()}" for field in Settings.model_fields}
    assert expected - names == set(), "missing from .env.production.example"
    assert names - expected == set(), "not a setting"
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert re.search(rf"^{name}=", template, re.M), name
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env.production" in ignored


def test_dockerfile_runs_as_a_non_root_user_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r"^RUN pip install \.", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", dockerfile, re.M) and "/healthz" in dockerfile
    for package in ("robotrader", "bots", "engine", "billing", "db", "web"):
        assert f"COPY {package} ./{package}" in dockerfile, package
