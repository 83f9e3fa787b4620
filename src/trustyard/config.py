"""Every setting of trustyard: its default, its environment variable and its config-file key, in one place.

Precedence, highest first: command-line options, ``TRUSTYARD_<NAME>`` environment variables, the TOML
config file (``--config`` or ``TRUSTYARD_CONFIG``; keys are the field names below), the defaults here.
Unknown keys in the file are an error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from trustyard.errors import TrustyardError

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("trustyard_config_file", default=None)


class ConfigError(TrustyardError):
    """A setting has an invalid value or the config file cannot be read."""


def default_data_dir() -> Path:
    """The per-user data folder (``~/.local/share/trustyard`` on Linux)."""
    return Path(platformdirs.user_data_dir("trustyard", appauthor=False))


class Settings(BaseSettings):
    """trustyard's settings. Field docs are what ``trustyard serve --help`` and the README describe."""

    model_config = SettingsConfigDict(env_prefix="TRUSTYARD_", extra="forbid", frozen=True)

    listen: str = Field(default="127.0.0.1:5000", description="HOST:PORT the server listens on")
    data_dir: Path = Field(default_factory=default_data_dir, description="folder for blobs and metadata")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database; default SQLite file <data_dir>/trustyard.db",
    )
    tls_cert: Path | None = Field(default=None, description="PEM certificate chain; enables HTTPS")
    tls_key: Path | None = Field(default=None, description="PEM private key for tls_cert")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = Field(default="json", description="json lines or human text")
    max_manifest_size: int = Field(default=4 * 1024 * 1024, gt=0, description="largest manifest accepted")
    fsync: bool = Field(default=True, description="fsync blobs before they become visible (durability)")
    workers: int = Field(default=1, ge=1, le=64, description="server worker processes")
    gc_interval: float = Field(default=0, ge=0, description="seconds between online GC runs in serve; 0=off")
    gc_grace_period: float = Field(
        default=3600, ge=0, description="unreferenced blobs younger than this are never collected"
    )
    gc_delete_untagged: bool = Field(default=False, description="scheduled GC also removes untagged manifests")
    upload_expiry: float = Field(default=7 * 24 * 3600, gt=0, description="abandoned uploads expire after")
    trust_kek: SecretStr | None = Field(
        default=None,
        description="base64 of 32 bytes: the key that encrypts the server's trust signing keys at rest;"
        " default the file trust_kek_file",
    )
    trust_kek_file: Path | None = Field(
        default=None,
        description="file holding trust_kek (base64, mode 0600); default <data_dir>/trust/kek, created on first use",
    )
    trust_timestamp_expiry: float = Field(
        default=14 * 24 * 3600,
        gt=0,
        description="seconds a server-signed timestamp is valid (notary: 14 days); keep it above"
        " trust_timestamp_resign_margin, else every read re-signs",
    )
    trust_timestamp_resign_margin: float = Field(
        default=24 * 3600,
        gt=0,
        description="a timestamp with less validity left than this is re-signed when next served, so clients"
        " never see a stale one",
    )
    trust_snapshot_expiry: float = Field(
        default=3 * 365 * 24 * 3600, gt=3600, description="seconds a server-signed snapshot is valid (notary: 3 years)"
    )
    trust_max_metadata_size: int = Field(
        default=100 * 1024 * 1024, gt=0, description="largest trust metadata upload (notary's client cap: 100 MiB)"
    )
    token_service: str = Field(
        default="trustyard", min_length=1, description="service name in Bearer challenges and token audience"
    )
    token_issuer: str = Field(default="trustyard", min_length=1, description="iss claim of issued tokens")
    token_lifetime: float = Field(default=300, gt=0, le=24 * 3600, description="seconds an access token lives")
    refresh_token_lifetime: float = Field(
        default=30 * 24 * 3600, gt=0, description="seconds a refresh token (OAuth2 POST flow) lives"
    )
    token_leeway: float = Field(
        default=10, ge=0, le=300, description="clock skew tolerated when checking exp/nbf/iat of tokens"
    )
    token_signing_key: Path | None = Field(
        default=None,
        description="PEM ES256 key signing tokens (mode 0600); default <data_dir>/auth/token-signing-key.pem,"
        " generated on first use",
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="failed logins per user and client address before logins are throttled"
    )
    login_failure_window: float = Field(
        default=300, gt=0, description="seconds over which failed logins are counted for throttling"
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description="password of the first administrator 'admin', created on first start; generated and printed"
        " once when unset",
    )
    insecure_anonymous_push: bool = Field(
        default=False,
        description="INSECURE: anyone, without credentials, may push, pull and delete everywhere (the bare"
        " registry's behaviour); logged as a warning at every start",
    )
    users_create_projects: bool = Field(
        default=True, description="any user may create projects (by pushing to a new one); else administrators only"
    )
    auth_cache_ttl: float = Field(
        default=5, ge=0, le=300, description="seconds a permission decision or Basic login is reused"
    )
    public_hosts: list[str] = Field(
        default_factory=list,
        description="HOST[:PORT] names clients reach this registry by (besides each request's Host); Docker-style"
        " names HOST[:PORT]/REPO in token scopes and trust GUNs mean REPO when HOST[:PORT] is one of them",
    )
    token_realm: str | None = Field(
        default=None,
        description="absolute URL of the token endpoint in Bearer challenges; default from the request's host,"
        " /auth/token (set it behind a reverse proxy)",
    )
    audit_flush_interval: float = Field(
        default=1.0, gt=0, le=60, description="seconds between batched writes of request audit events"
    )
    scan_workers: int = Field(
        default=1, ge=0, le=16, description="threads indexing and scanning pushed images in the background; 0=off"
    )
    scan_recheck_interval: float = Field(
        default=10, gt=0, le=3600, description="seconds between looks for new vulnerability data to re-check"
    )
    vulndb_path: Path | None = Field(
        default=None, description="vulnerability store the registry scans against; default <data_dir>/vulndb.sqlite"
    )
    vulndb_max_age: float = Field(
        default=7 * 24 * 3600, gt=0, description="seconds after which a scan warns that the advisory data is old"
    )
    vulndb_sources: list[str] = Field(
        default=["osv", "nvd", "debian", "alpine"], description="sources `trustyard db update` downloads"
    )
    vulndb_osv_url: str = Field(
        default="https://osv-vulnerabilities.storage.googleapis.com",
        description="base of osv.dev's ECOSYSTEM/all.zip files (and ecosystems.txt)",
    )
    vulndb_osv_ecosystems: list[str] = Field(
        default_factory=list, description="OSV ecosystems to download; empty = every one in ecosystems.txt"
    )
    vulndb_nvd_url: str = Field(
        default="https://services.nvd.nist.gov/rest/json/cves/2.0", description="the NVD's CVE API 2.0"
    )
    vulndb_nvd_api_key: SecretStr | None = Field(default=None, description="NVD API key (apiKey header)")
    vulndb_nvd_page_size: int = Field(default=2000, ge=1, le=2000, description="CVEs per NVD API request")
    vulndb_nvd_delay: float = Field(
        default=6.0, ge=0, description="seconds between NVD API requests (the NVD asks for 6 without a key)"
    )
    vulndb_debian_url: str = Field(
        default="https://security-tracker.debian.org/tracker/data/json", description="the Debian tracker's JSON"
    )
    vulndb_alpine_url: str = Field(default="https://secdb.alpinelinux.org", description="base of Alpine's secdb")
    vulndb_alpine_releases: list[str] = Field(
        default=["v3.19", "v3.20", "v3.21", "v3.22"], description="Alpine branches whose secdb is downloaded"
    )
    webhook_url: str | None = Field(
        default=None, description="URL that gets a JSON POST when an image's findings change (scan.changed)"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="key of the X-Trustyard-Signature HMAC-SHA256 over each webhook body"
    )
    webhook_attempts: int = Field(
        default=5, ge=1, le=20, description="deliveries tried per webhook event, with exponential backoff"
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:5000")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Command line, then environment, then the TOML file chosen by ``load_settings``."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def host(self) -> str:
        """The host part of ``listen``."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The port part of ``listen``."""
        return int(self.listen.rpartition(":")[2])

    @property
    def metadata_url(self) -> str:
        """The database URL, defaulting to the embedded SQLite file."""
        return self.database_url or f"sqlite:///{self.data_dir / 'trustyard.db'}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from overrides (``None`` values ignored), environment and config file."""
    if config_file is None and os.environ.get("TRUSTYARD_CONFIG"):
        config_file = Path(os.environ["TRUSTYARD_CONFIG"])
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    token = _CONFIG_FILE.set(config_file)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from e
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read config file {config_file}: {e}") from e
    finally:
        _CONFIG_FILE.reset(token)
