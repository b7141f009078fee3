"""Settings: one typed object read from TOCSIN_* environment variables (or *_FILE for secrets)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "insecure-demo-secret-change-me"


class Settings(BaseSettings):
    """Everything Tocsin can be told; passed into `create_app(settings)`, never read at import time."""

    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/tocsin.db",
        description="sqlite:///path or postgresql://user@host/db; the driver is chosen internally.",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(DEFAULT_SECRET),
        description="Signs session cookies and CSRF tokens. Required outside demo mode.",
    )
    secret_key_file: Path | None = Field(default=None, description="Read the secret key from this file.")
    demo: bool = Field(default=False, description="Demo mode: allows the default secret key.")
    base_url: str = Field(default="http://127.0.0.1:8080", description="Public URL used in links.")
    max_body_bytes: int = Field(default=1_048_576, description="Largest accepted request body, in bytes.")
    page_size_max: int = Field(default=200, description="Largest page a list endpoint returns.")
    session_hours: int = Field(default=12, description="How long a login session lasts.")
    db_pool_size: int = Field(default=10, description="Connections per process on PostgreSQL.")
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    engine: bool = Field(
        default=True,
        description="Run the timer engine inside `tocsin serve` (false when `tocsin worker`s run it).",
    )
    engine_lease_seconds: float = Field(
        default=60.0, description="How long a worker holds a due timer before another may retry it."
    )
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server for notification mail; while unset, email notifications wait and retry.",
    )
    smtp_port: int = Field(
        default=587, description="SMTP port: 587 for STARTTLS, 465 for implicit TLS, 25 plain."
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: upgrade the connection and require it; tls: TLS from the first byte "
        "(port 465); none: plain text, for a relay on the same host or network only.",
    )
    smtp_username: str | None = Field(
        default=None, description="SMTP login; unset for relays that need none."
    )
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_password_file: Path | None = Field(
        default=None,
        description="Read the SMTP password from this file (read at each send; wins over the value).",
    )
    smtp_from: str = Field(
        default="Tocsin <tocsin@localhost>", description="From address of notification mail."
    )
    smtp_timeout_seconds: float = Field(default=15.0, description="Timeout of each SMTP conversation step.")
    smtp_listen_host: str = Field(
        default="127.0.0.1",
        description="Interface of the inbound mail listener (email intake), when smtp_listen_port is set.",
    )
    smtp_listen_port: int | None = Field(
        default=None,
        ge=0,
        le=65_535,
        description="Port of the inbound mail listener run inside `tocsin serve` (mail to an email "
        "integration's address opens alerts); unset: no listener.",
    )
    allow_private_targets: bool = Field(
        default=False,
        description="Let webhook, Slack and Teams notifications reach private, loopback, link-local and "
        "other non-public addresses (turns the SSRF guard off). For tests and closed networks only.",
    )
    http_timeout_seconds: float = Field(
        default=10.0,
        description="Timeout of each outbound notification request (connect, write, read, each).",
    )
    portal_enabled: bool = Field(
        default=True,
        description="Let people without an account report incidents at /report (name and email asked, "
        "CSRF-protected and rate-limited); false makes the report form require a login.",
    )

    @model_validator(mode="after")
    def _read_secret_file(self) -> Settings:
        if self.secret_key_file is not None:
            self.secret_key = SecretStr(self.secret_key_file.read_text().strip())
        return self

    def check_secret(self) -> None:
        """Refuse to serve with the published default secret unless in demo mode."""
        if not self.demo and self.secret_key.get_secret_value() == DEFAULT_SECRET:
            raise SystemExit(
                "TOCSIN_SECRET_KEY is the published default: set TOCSIN_SECRET_KEY (or "
                "TOCSIN_SECRET_KEY_FILE) to a long random value, or TOCSIN_DEMO=1 for a throwaway demo."
            )
