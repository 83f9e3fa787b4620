"""Settings precedence (option > environment > TOML file > default) and clean errors for bad settings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from trustyard.config import ConfigError, load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("TRUSTYARD_LISTEN", "TRUSTYARD_DATA_DIR", "TRUSTYARD_CONFIG", "TRUSTYARD_GC_GRACE_PERIOD"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert s.listen == "127.0.0.1:5000"
    assert s.host == "127.0.0.1" and s.port == 5000
    assert s.metadata_url == f"sqlite:///{s.data_dir / 'trustyard.db'}"
    assert s.max_manifest_size == 4 * 1024 * 1024
    assert s.fsync is True


def test_precedence_option_env_file_default(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('listen = "127.0.0.1:7001"\ngc_grace_period = 10\nlog_format = "text"\n')
    s = load_settings(cfg)
    assert (s.listen, s.gc_grace_period, s.log_format) == ("127.0.0.1:7001", 10, "text")
    clean_env.setenv("TRUSTYARD_LISTEN", "127.0.0.1:7002")
    s = load_settings(cfg)
    assert s.listen == "127.0.0.1:7002"  # environment beats the file
    assert s.gc_grace_period == 10  # the file still fills what the environment does not set
    s = load_settings(cfg, listen="127.0.0.1:7003", gc_grace_period=None)
    assert s.listen == "127.0.0.1:7003"  # the option beats both; None means "not given"
    assert s.gc_grace_period == 10


def test_config_file_from_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "d"}"\n')
    clean_env.setenv("TRUSTYARD_CONFIG", str(cfg))
    assert load_settings().data_dir == tmp_path / "d"


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ('lisen = "127.0.0.1:1"\n', "lisen"),  # a typo is an error, not a silent default
        ('listen = "nope"\n', "HOST:PORT"),
        ("max_manifest_size = -1\n", "max_manifest_size"),
        ("workers = 0\n", "workers"),
        ("listen = [\n", "cannot read config file"),
    ],
    ids=["unknown-key", "bad-listen", "negative-size", "zero-workers", "broken-toml"],
)
def test_bad_settings_are_clean_errors(clean_env: pytest.MonkeyPatch, tmp_path: Path, toml: str, fragment: str) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(cfg)


def test_missing_config_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")


def test_cli_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('listen = "nope"\n')
    proc = subprocess.run(
        ["trustyard", "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    assert "HOST:PORT" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_usage_error_exit_code() -> None:
    proc = subprocess.run(["trustyard", "serve", "--no-such-option"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "No such option" in proc.stderr


def test_help_explains_every_command() -> None:
    out = subprocess.run(["trustyard", "--help"], capture_output=True, text=True, check=True).stdout
    assert "serve" in out and "gc" in out
    serve_help = subprocess.run(["trustyard", "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--listen", "--data-dir", "--database-url", "--tls-cert", "--tls-key", "--config", "--workers"):
        assert option in serve_help
