"""The server's configuration: read from the environment here and nowhere else.

Every variable of DESIGN.md's list maps to one field (`APIQ_DATABASE_URL` ->
`database_url`, `SPEC_CACHE_TTL_HOURS` -> `spec_cache_ttl_hours`, ...). The SDK's value
objects (`SpecLimits`, `CacheSettings`, `EgressPolicy`) are derived from these fields, so
the server and the SDK never read the environment twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from apiq.config import CacheSettings, SpecLimits
from apiq.egress import EgressPolicy
from apiq.errors import ConfigurationError
from apiq.secrets.envelope import KeyRing

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Reference-server settings; each field names its environment variable."""

    model_config = SettingsConfigDict(env_prefix="APIQ_", frozen=True, extra="ignore")

    mode: Literal["production", "development", "demo"] = "development"
    """`APIQ_MODE`. Production refuses to start without `APIQ_MASTER_KEY` and marks
    session cookies Secure; development and demo keep a key file beside the database."""
    database_url: str = "sqlite:///apiq.sqlite"
    """`APIQ_DATABASE_URL`: sqlite:///file or postgresql://user@host/db."""
    redis_url: str | None = None
    """`APIQ_REDIS_URL`: when set, specs are cached and rate limits counted in Redis."""
    spec_cache_ttl_hours: float = Field(
        24.0, validation_alias=AliasChoices("SPEC_CACHE_TTL_HOURS", "APIQ_SPEC_CACHE_TTL_HOURS")
    )
    spec_max_bytes: int = 5 * 1024 * 1024
    """`APIQ_SPEC_MAX_BYTES`."""
    spec_timeout_s: float = 10.0
    """`APIQ_SPEC_TIMEOUT_S`."""
    master_key: SecretStr | None = None
    """`APIQ_MASTER_KEY`: the key ring of secrets (`v1:<base64 key>[,v2:...]`)."""
    key_file: Path | None = None
    """`APIQ_KEY_FILE`: where development and demo keep a generated key ring
    (default: `apiq-master.key` beside a SQLite database, else in the working directory)."""
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    llm_base_url: str | None = None
    """`APIQ_LLM_BASE_URL`: any OpenAI-compatible server; unset with no OpenAI key plans offline."""
    llm_model: str | None = None
    """`APIQ_LLM_MODEL`."""
    egress_allow: str = ""
    """`APIQ_EGRESS_ALLOW`: loopback host:port pairs the egress policy lets through."""
    executor: Literal["dbos", "local"] = "dbos"
    """`APIQ_EXECUTOR`: durable DBOS (default) or in-process (one server process only)."""
    run_executions: bool = True
    """`APIQ_RUN_EXECUTIONS`: on PostgreSQL, whether this server also runs queued
    executions (False leaves them to `apiq worker` processes)."""
    body_max_bytes: int = 6 * 1024 * 1024
    """`APIQ_BODY_MAX_BYTES`: larger request bodies get 413 (a spec upload is at most 5 MiB)."""
    session_idle_minutes: float = 60.0
    """`APIQ_SESSION_IDLE_MINUTES`: a session unused this long ends."""
    session_max_hours: float = 12.0
    """`APIQ_SESSION_MAX_HOURS`: a session ends this long after login, used or not."""
    rate_limit_per_minute: int = 30
    """`APIQ_RATE_LIMIT_PER_MINUTE`: per user, each of planning, spec registration, executions."""
    login_attempts: int = 5
    """`APIQ_LOGIN_ATTEMPTS`: failures per account (and per IP) in 15 minutes before refusal."""
    cors_origins: list[str] = []
    """`APIQ_CORS_ORIGINS` (JSON list): origins allowed cross-site; none by default."""
    behind_tls: bool = False
    """`APIQ_BEHIND_TLS`: served over HTTPS (directly or by a proxy): adds HSTS."""
    audit_hmac_key: SecretStr | None = None
    """`APIQ_AUDIT_HMAC_KEY`: keys the HMACs that stand for secrets in the audit log
    (derived from the master key ring when unset)."""

    @property
    def production(self) -> bool:
        """Whether the server runs in production mode."""
        return self.mode == "production"

    def spec_limits(self) -> SpecLimits:
        """Fetch and parse bounds for the SDK."""
        return SpecLimits(max_bytes=self.spec_max_bytes, timeout_s=self.spec_timeout_s)

    def cache_settings(self) -> CacheSettings:
        """Spec cache TTL for the SDK."""
        return CacheSettings(ttl_s=self.spec_cache_ttl_hours * 3600.0)

    def egress(self) -> EgressPolicy:
        """The egress policy (public addresses only, plus `egress_allow`)."""
        return EgressPolicy.from_env({"APIQ_EGRESS_ALLOW": self.egress_allow})

    def llm_environ(self) -> dict[str, str]:
        """The variables the language-model planner reads (empty: plan offline)."""
        environ = {
            "OPENAI_API_KEY": self.openai_api_key.get_secret_value() if self.openai_api_key else "",
            "APIQ_LLM_BASE_URL": self.llm_base_url or "",
            "APIQ_LLM_MODEL": self.llm_model or "",
        }
        return {name: value for name, value in environ.items() if value}

    def keyring(self) -> KeyRing:
        """The key ring of secrets.

        Raises:
            ConfigurationError: Production without `APIQ_MASTER_KEY`, or a malformed key.
        """
        if self.master_key is not None:
            return KeyRing.parse(self.master_key.get_secret_value())
        if self.production:
            raise ConfigurationError(
                "APIQ_MODE=production needs APIQ_MASTER_KEY (a key ring, v1:<base64 key>); "
                'generate one with: python -c "from apiq.secrets.envelope import KeyRing; '
                'print(KeyRing.generate().to_text())"'
            )
        return KeyRing.from_file(self._key_file(), create=True)

    def _key_file(self) -> Path:
        if self.key_file is not None:
            return self.key_file
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and self.database_url != prefix:
            return Path(self.database_url[len(prefix) :]).with_name("apiq-master.key")
        return Path("apiq-master.key")
