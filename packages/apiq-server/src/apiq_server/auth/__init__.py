"""Users, passwords (Argon2id), sessions and the request's current user."""

from __future__ import annotations

from apiq_server.auth.current import CurrentUser

__all__ = ["CurrentUser"]
