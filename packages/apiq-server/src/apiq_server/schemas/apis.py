"""Request and response schemas of `/api/apis`: API connections, their endpoints, OAuth connect.

Credentials are write-only: requests carry them as `SecretStr` (never echoed, never in a
repr), responses describe each configured scheme by name, kind and at most a masked hint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, model_validator

from apiq_server.schemas.common import RequestModel, ResponseModel

__all__ = [
    "ApiCreate",
    "ApiDeleted",
    "ApiOut",
    "ApiStatus",
    "ApiTestResult",
    "ApiUpdate",
    "CredentialIn",
    "CredentialOut",
    "EndpointOut",
    "OAuthCallbackOut",
    "OAuthClientIn",
    "OAuthStartIn",
    "OAuthStartOut",
    "ServerIn",
    "ServerOut",
]

ApiStatus = Literal["ready", "needs_auth", "unreachable", "auth_failed", "spec_error"]
"""`ready`: usable; `needs_auth`: credentials or an OAuth connect are missing; the others
name what the last test or refresh found."""

_NAME = r"^[^\x00-\x1f\x7f]+$"
_URL = Field(default=None, min_length=1, max_length=2000)


class ServerIn(RequestModel):
    """Which of the spec's servers to call: by position with variables, or a base URL."""

    index: int = Field(0, ge=0, le=1000)
    variables: dict[str, str] = Field(default_factory=dict, max_length=50)
    base_url: str | None = _URL
    """Call this absolute http(s) base URL instead of the spec's servers."""


class CredentialIn(RequestModel):
    """One security scheme's credential: `value` (API key or bearer token), or `username`
    and `password` (HTTP basic). Write-only."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["value"],
                    "properties": {
                        "value": {"type": "string"},
                        "username": {"type": "null"},
                        "password": {"type": "null"},
                    },
                },
                {
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                        "value": {"type": "null"},
                    },
                },
            ]
        }
    )

    value: SecretStr | None = Field(None, min_length=1, max_length=8192)
    username: str | None = Field(None, min_length=1, max_length=200)
    password: SecretStr | None = Field(None, min_length=1, max_length=8192)

    @model_validator(mode="after")
    def _one_shape(self) -> CredentialIn:
        if (self.value is None) == (self.username is None and self.password is None):
            raise ValueError("give either value, or username and password")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic credentials need both username and password")
        return self


class OAuthClientIn(RequestModel):
    """The OAuth 2.0 client of one oauth2 scheme; URLs default to the spec's flows."""

    client_id: str = Field(min_length=1, max_length=500)
    client_secret: SecretStr | None = Field(None, min_length=1, max_length=4096)
    """Write-only; none makes a public client (PKCE alone)."""
    authorization_url: str | None = _URL
    token_url: str | None = _URL
    revocation_url: str | None = _URL
    scopes: list[str] = Field(default_factory=list, max_length=50)
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"


class ApiCreate(RequestModel):
    """Register an API: its spec (`specUrl`, or the document itself in `specContent`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["specUrl"], "properties": {"specUrl": {"type": "string"}}},
                {"required": ["specContent"], "properties": {"specContent": {"type": "string"}}},
            ]
        }
    )

    name: str = Field(min_length=1, max_length=64, pattern=_NAME)
    """Unique among the user's connections."""
    spec_url: str | None = _URL
    spec_content: str | None = Field(None, min_length=1)
    """An uploaded OpenAPI/Swagger document (JSON or YAML), at most APIQ_SPEC_MAX_BYTES."""
    server: ServerIn = Field(default_factory=ServerIn)
    credentials: dict[str, CredentialIn] = Field(default_factory=dict, max_length=20)
    """Security scheme name -> credential."""
    oauth: dict[str, OAuthClientIn] = Field(default_factory=dict, max_length=10)
    """oauth2 security scheme name -> client configuration."""

    @model_validator(mode="after")
    def _one_spec(self) -> ApiCreate:
        if (self.spec_url is None) == (self.spec_content is None):
            raise ValueError("give exactly one of specUrl and specContent")
        return self


class ApiUpdate(RequestModel):
    """Change a connection; each field given replaces what was there (credentials whole)."""

    name: str | None = Field(None, min_length=1, max_length=64, pattern=_NAME)
    server: ServerIn | None = None
    credentials: dict[str, CredentialIn] | None = Field(None, max_length=20)
    oauth: dict[str, OAuthClientIn] | None = Field(None, max_length=10)


class ServerOut(ResponseModel):
    """The server choice and the base URL it resolved to."""

    url: str
    index: int
    variables: dict[str, str]
    base_url: str | None


class CredentialOut(ResponseModel):
    """A configured scheme: never its secret."""

    scheme: str
    kind: str
    hint: str | None = None
    """The last characters of a long key (`…abcd`), else nothing."""
    connected: bool | None = None
    """For OAuth: whether tokens are stored (null for other kinds)."""


class ApiOut(ResponseModel):
    """One API connection."""

    id: str
    name: str
    spec_url: str
    """The spec's URL (query values hidden), or `upload:sha256:<hex>` for an upload."""
    title: str
    version: str
    server: ServerOut
    credentials: list[CredentialOut]
    status: ApiStatus
    status_detail: str | None
    endpoint_count: int
    last_used: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointOut(ResponseModel):
    """One operation of a connection's catalog snapshot."""

    operation_id: str
    method: str
    path: str
    summary: str
    tags: list[str]
    changes_state: bool


class ApiTestResult(ResponseModel):
    """What `POST /api/apis/{id}/test` found; `status` is the connection's new status."""

    reachable: bool
    status: ApiStatus
    auth_ok: bool
    detail: str
    http_status: int | None
    """The status the server URL answered with (any status counts as reachable)."""


class OAuthStartIn(RequestModel):
    """Which oauth2 scheme to connect (optional when the connection configures one)."""

    scheme: str | None = Field(None, min_length=1, max_length=200)


class OAuthStartOut(ResponseModel):
    """Where to send the user's browser."""

    authorization_url: str


class OAuthCallbackOut(ResponseModel):
    """The connection the callback completed."""

    api_id: str
    scheme: str
    status: ApiStatus


class ApiDeleted(ResponseModel):
    """The connection that was deleted, with its endpoints and secrets."""

    id: str
    deleted: Literal[True] = True
