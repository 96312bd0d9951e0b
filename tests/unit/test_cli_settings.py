"""An invalid MANGAASSIST_* value is a usage error before any command runs: exit code 2, the variable named."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.settings import env_var_names, get_settings


@pytest.fixture(autouse=True)
def _fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_bad_env_value_is_exit_2_naming_each_variable(monkeypatch):
    monkeypatch.setenv("MANGAASSIST_ROUTER_ENCODER", "bert")
    monkeypatch.setenv("MANGAASSIST_CHECKPOINT_DURABILITY", "sometimes")
    result = CliRunner().invoke(app, ["classify", "--json"], input="hello\n")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert "MANGAASSIST_ROUTER_ENCODER='bert'" in result.stderr and "'use', 'e5' or 'none'" in result.stderr
    assert "MANGAASSIST_CHECKPOINT_DURABILITY='sometimes'" in result.stderr
    assert result.stdout == ""  # the command never ran: no half output


def test_valid_env_reaches_the_command(monkeypatch):
    monkeypatch.setenv("MANGAASSIST_ROUTER_ENCODER", "none")
    result = CliRunner().invoke(app, ["eval", "routing", "--split", "nope"])
    assert result.exit_code == 2  # the command's own argument check, not the settings check
    assert "invalid settings" not in result.stderr


def test_env_var_names_follow_aliases_and_prefix():
    assert env_var_names("router_encoder") == ["MANGAASSIST_ROUTER_ENCODER"]
    assert env_var_names("database_url") == ["DATABASE_URL", "MANGAASSIST_DATABASE_URL"]
