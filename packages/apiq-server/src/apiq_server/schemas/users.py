"""Schemas of users and auth: registration, login, sessions, password change, admin edits.

Emails are normalised (surrounding space dropped, lower case) before they are checked, so
`Alice@Example.com ` and `alice@example.com` are one account. Passwords are any Unicode of
8 to 256 characters, hashed whole: nothing is stripped or truncated. Request schemas
forbid unknown fields, so a client that sends `role`, `id` or `ownerId` gets 400.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from apiq_server.auth.passwords import MAX_LENGTH, MIN_LENGTH
from apiq_server.policy import Role
from apiq_server.schemas.common import JsonBool, RequestModel, ResponseModel

__all__ = [
    "EMAIL_PATTERN",
    "MAX_EMAIL_LENGTH",
    "Email",
    "LoggedOut",
    "LoginIn",
    "NewPassword",
    "PasswordChangeIn",
    "RegisterIn",
    "SessionOut",
    "UserOut",
    "UserPatch",
    "normalise_email",
]

EMAIL_PATTERN = (
    r"^[\t\n\v\f\r ]*[^@\x00-\x20\x7f]{1,64}@[^@\x00-\x20\x7f]+"
    r"\.[^@\x00-\x20\x7f.]+[\t\n\v\f\r ]*$"
)
"""Deliberately simple: one `@`, no inner spaces, a dot in the domain; spaces around are
dropped. Delivery proves the rest. (The OpenAPI document shows this exact pattern, so
what it promises and what is accepted agree.)"""
MAX_EMAIL_LENGTH = 320


def normalise_email(value: str) -> str:
    """`value` stripped and lower-cased.

    Raises:
        ValueError: It does not look like an email address.
    """
    if not re.fullmatch(EMAIL_PATTERN, value):
        raise ValueError("must be an email address such as name@example.com")
    normalised = _encodable(value.strip(" \t\n\v\f\r").lower())
    if len(normalised) > MAX_EMAIL_LENGTH:  # lower() can lengthen a few characters ("İ")
        raise ValueError(f"must be at most {MAX_EMAIL_LENGTH} characters")
    return normalised


def _encodable(value: str) -> str:
    """Refuse lone surrogates (valid in JSON escapes, not in UTF-8): Argon2 and the
    database see UTF-8, and a value that cannot become UTF-8 must be a 400, not a 500."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


Email = Annotated[
    str,
    Field(max_length=MAX_EMAIL_LENGTH, json_schema_extra={"pattern": EMAIL_PATTERN}),
    AfterValidator(normalise_email),
]
"""An email address, normalised (stripped, lower case) and checked simply."""

NewPassword = Annotated[
    str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH), AfterValidator(_encodable)
]
"""A password being set: 8 to 256 characters of any Unicode, kept whole."""

_GivenPassword = Annotated[
    str, Field(min_length=1, max_length=MAX_LENGTH), AfterValidator(_encodable)
]
"""A password being checked: any length up to the maximum (a short one is simply wrong)."""


class RegisterIn(RequestModel):
    """`POST /api/auth/register`: a new account (the first one of a server is its admin)."""

    email: Email
    password: NewPassword


class LoginIn(RequestModel):
    """`POST /api/auth/login`."""

    email: Email
    password: _GivenPassword


class PasswordChangeIn(RequestModel):
    """`POST /api/auth/password`: every session of the user ends; a new one is returned."""

    current_password: _GivenPassword
    new_password: NewPassword


class UserPatch(RequestModel):
    """`PATCH /api/admin/users/{id}`: change a user's role, or disable or enable them
    (fields left out, or null, stay as they are)."""

    role: Role | None = None
    disabled: JsonBool | None = None


class UserOut(ResponseModel):
    """A user account as the API shows it (never the password hash)."""

    id: str
    email: str
    role: Role
    disabled: bool
    created_at: datetime


class SessionOut(ResponseModel):
    """A new session: send `token` as `Authorization: Bearer`, or rely on the
    `apiq_session` cookie and repeat `csrfToken` in `X-CSRF-Token` on unsafe requests."""

    token: str
    csrf_token: str
    expires_at: datetime
    """When the session ends at the latest (it ends sooner when left idle)."""
    user: UserOut


class LoggedOut(ResponseModel):
    """`POST /api/auth/logout`: the session has ended."""

    logged_out: bool = True
