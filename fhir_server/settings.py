"""Server settings, read once from the environment (``FHIR_*`` variables) and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Settings(BaseSettings):
    """Every setting the server reads; each one is documented in the README."""

    model_config = SettingsConfigDict(env_prefix="FHIR_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path("./var"))
    database_url: str | None = None
    base_url: str | None = None
    encryption_keys: str | None = None
    hash_key: str | None = None
    phone_default_region: str = "US"
    mrn_system: str = "urn:prm:mrn"
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 64
    bundle_max_entries: int = 10_000
    bundle_max_bytes: int = 64 * 1024 * 1024
    page_size_default: int = 50
    page_size_max: int = 1000
    include_max: int = 1000
    db_pool_size: int = 10
    statement_timeout_ms: int = 30_000
    log_level: str = "info"
    drain_seconds: float = 0.0
    hsts: bool = False
    cors_origins: str = ""
    blob_url: str | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    allowed_media_types: str = ("image/jpeg,image/png,application/pdf,audio/ogg,audio/mpeg,"
                                "video/mp4,video/webm")
    presign_seconds: int = 600
    binary_redirect: bool = False
    blob_retain_unused: bool = False
    match_weights: Path | None = None
    match_candidate_limit: int = 100
    messaging_channels: str = ""
    messaging_worker: bool = True
    messaging_poll_seconds: float = 2.0
    messaging_lease_seconds: int = 120
    messaging_max_attempts: int = 5
    messaging_retry_seconds: float = 30.0
    messaging_send_concurrency: int = 8
    messaging_max_recipients: int = 1000
    send_rate_limit: int = 10_000
    twilio_api_base: str | None = None
    smtp_url: str | None = None
    email_from: str | None = None
    auth_jwks: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_authorize_url: str | None = None
    auth_token_url: str | None = None
    allow_unauthenticated: bool = False
    audit: bool = True
    export_page_size: int = Field(default=500, ge=1)
    export_file_resources: int = Field(default=100_000, ge=1)
    export_keep_seconds: int = Field(default=86_400, ge=0)
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    twilio_account_sid: str | None = Field(default=None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str | None = Field(default=None, validation_alias="TWILIO_AUTH_TOKEN")
    twilio_from_number: str | None = Field(default=None, validation_alias="TWILIO_FROM_NUMBER")
    twilio_whatsapp_from: str | None = Field(default=None,
                                             validation_alias="TWILIO_WHATSAPP_FROM")

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"'{value[:20]}' is not one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    @model_validator(mode="after")
    def _auth_all_or_nothing(self) -> Settings:
        given = [name for name in ("auth_jwks", "auth_issuer", "auth_audience")
                 if getattr(self, name)]
        if given and len(given) != 3:
            missing = sorted({"auth_jwks", "auth_issuer", "auth_audience"} - set(given))
            raise ValueError("authorisation needs FHIR_AUTH_JWKS, FHIR_AUTH_ISSUER and "
                             "FHIR_AUTH_AUDIENCE together; missing: "
                             + ", ".join(f"FHIR_{name.upper()}" for name in missing))
        return self

    @property
    def auth_enabled(self) -> bool:
        """Whether FHIR requests need a Bearer token (FHIR_AUTH_* set)."""
        return bool(self.auth_jwks and self.auth_issuer and self.auth_audience)

    @property
    def allowed_media_type_set(self) -> frozenset[str]:
        return frozenset(part.strip().lower() for part in self.allowed_media_types.split(",")
                         if part.strip())

    @property
    def cors_origin_list(self) -> list[str]:
        """Origins browsers may call from (``FHIR_CORS_ORIGINS``); empty: CORS off."""
        return [part.strip().rstrip("/") for part in self.cors_origins.split(",")
                if part.strip()]

    @property
    def sending_channels(self) -> frozenset[str]:
        """Channels that send for real (``FHIR_MESSAGING_CHANNELS``); the rest go to the outbox."""
        return frozenset(part.strip().lower() for part in self.messaging_channels.split(",")
                         if part.strip())

    @property
    def resolved_database_url(self) -> str:
        """The configured database URL, or an SQLite file under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fhir.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
