"""bench.server_overhead: the server subprocess loads the same fitted models as the caller (no retrain)."""

from __future__ import annotations

from bench.server_overhead import ROOT, server_env


def test_server_env_keeps_the_model_cache_settings_and_replaces_the_rest():
    environ = {"PATH": "/usr/bin", "HOME": "/home/x", "MANGAASSIST_MODEL_DIR": "/models/ma",
               "MANGAASSIST_ROUTER_ENCODER": "none", "MANGAASSIST_SEARCH_ENCODER": "none",
               "MANGAASSIST_DATA_DIR": "/home/x/data", "MANGAASSIST_AUTH": "off", "MANGAASSIST_PROFILE": "bedrock",
               "DATABASE_URL": "postgresql://db/scratch"}
    env = server_env(environ, "/tmp/server-data")
    assert env == {"PATH": "/usr/bin", "HOME": "/home/x", "DATABASE_URL": "postgresql://db/scratch",
                   "MANGAASSIST_MODEL_DIR": "/models/ma", "MANGAASSIST_ROUTER_ENCODER": "none",
                   "MANGAASSIST_SEARCH_ENCODER": "none", "PYTHONPATH": str(ROOT), "MANGAASSIST_AUTH": "on",
                   "MANGAASSIST_DATA_DIR": "/tmp/server-data"}
    assert environ["MANGAASSIST_DATA_DIR"] == "/home/x/data"  # the caller's mapping is not modified


def test_server_env_without_a_model_dir_uses_the_default_cache():
    env = server_env({"PATH": "/usr/bin"}, "/tmp/d")
    assert "MANGAASSIST_MODEL_DIR" not in env and env["MANGAASSIST_DATA_DIR"] == "/tmp/d"
