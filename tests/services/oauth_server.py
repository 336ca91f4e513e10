"""A real OAuth 2.0 authorization server on loopback (RFC 6749, RFC 7636 PKCE, RFC 7009).

Routes:
- `GET /authorize`: the user's approval is implied; answers 302 to `redirect_uri` with
  `code` and `state` (or `error=...` for a bad request, per RFC 6749 §4.1.2.1). PKCE is
  mandatory and S256 only.
- `POST /token`: `authorization_code` (checks the code is unused and unexpired, the
  `redirect_uri` and the PKCE `code_verifier`), `client_credentials`, and `refresh_token`
  with rotation: each refresh issues a new refresh token and the old one answers
  `invalid_grant` from then on. Clients authenticate with `client_secret_basic` or
  `client_secret_post`; a client registered without a secret is public. Every token
  request is counted in `token_requests`.
- `POST /revoke`: RFC 7009; answers 200 whether or not the token was known.
- `GET /resource`: 200 with a valid `Authorization: Bearer` access token, else 401.

Errors are JSON bodies `{"error": ..., "error_description": ...}` with the status codes of
RFC 6749 §5.2 (401 with `WWW-Authenticate` for a failed client authentication).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode

from tests.services import LoopbackService, Reply, ServiceRequest, json_reply

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "PUBLIC_CLIENT_ID", "OAuthServer"]

CLIENT_ID = "apiq-test-client"
"""A confidential client registered by default."""
CLIENT_SECRET = "client-secret-canary-5f1d2a"
"""Its secret."""
PUBLIC_CLIENT_ID = "apiq-public-client"
"""A public client (no secret) registered by default; it must use PKCE."""


@dataclass(frozen=True, slots=True)
class _Grant:
    client_id: str
    scope: str


@dataclass(frozen=True, slots=True)
class _Code:
    grant: _Grant
    redirect_uri: str
    challenge: str
    expires_at: float


def _error(status: int, error: str, description: str, **headers: str) -> Reply:
    body = {"error": error, "error_description": description}
    return json_reply(status, body, {"Cache-Control": "no-store", **headers})


class OAuthServer(LoopbackService):
    """The authorization server (see the module docstring for routes).

    Args:
        clients: client_id -> secret (None: a public client); defaults to `CLIENT_ID` and
            `PUBLIC_CLIENT_ID`.
        expires_in: Lifetime of access tokens in seconds, as told to clients and enforced by
            `/resource` (against `clock`).
        clock: The server's clock; tests may share an injected clock with the client.
    """

    def __init__(
        self,
        clients: Mapping[str, str | None] | None = None,
        *,
        expires_in: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.clients = dict(clients or {CLIENT_ID: CLIENT_SECRET, PUBLIC_CLIENT_ID: None})
        self.expires_in = expires_in
        self.clock = clock
        self.issue_refresh_tokens = True
        """False: token responses carry no refresh token (as some providers do)."""
        self.token_requests = 0
        """POSTs to /token, whatever their outcome."""
        self.revoked: list[str] = []
        """Every token value posted to /revoke, in order."""
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, tuple[_Grant, float]] = {}
        self._refresh: dict[str, _Grant] = {}

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.token_requests = 0
            self.revoked.clear()
            self._codes.clear()
            self._access.clear()
            self._refresh.clear()

    @property
    def refresh_tokens(self) -> frozenset[str]:
        """Refresh tokens currently valid."""
        with self.lock:
            return frozenset(self._refresh)

    @property
    def access_tokens(self) -> frozenset[str]:
        """Access tokens currently known (expired ones included)."""
        with self.lock:
            return frozenset(self._access)

    def handle(self, request: ServiceRequest) -> Reply:
        routes = {
            ("GET", "/authorize"): self._authorize,
            ("POST", "/token"): self._token,
            ("POST", "/revoke"): self._revoke,
            ("GET", "/resource"): self._resource,
        }
        route = routes.get((request.method, request.path))
        if route is None:
            return _error(404, "not_found", f"no route {request.method} {request.path}")
        with self.lock:
            return route(request)

    # --- /authorize --------------------------------------------------------------------

    def _authorize(self, request: ServiceRequest) -> Reply:
        query = dict(request.query)
        client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
        if client_id not in self.clients or not redirect_uri.startswith(("http://", "https://")):
            # Never redirect to an unverified URI (RFC 6749 §4.1.2.1): tell the user instead.
            return _error(400, "invalid_request", "unknown client_id or bad redirect_uri")
        state = query.get("state")

        def back(**params: str) -> Reply:
            if state is not None:
                params["state"] = state
            separator = "&" if "?" in redirect_uri else "?"
            return Reply(302, b"", {"Location": redirect_uri + separator + urlencode(params)})

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        challenge = query.get("code_challenge", "")
        if query.get("code_challenge_method") != "S256" or len(challenge) != 43:
            return back(error="invalid_request", error_description="PKCE S256 is required")
        code = secrets.token_urlsafe(24)
        grant = _Grant(client_id, query.get("scope", ""))
        self._codes[code] = _Code(grant, redirect_uri, challenge, self.clock() + 60)
        return back(code=code)

    # --- /token ------------------------------------------------------------------------

    def _client(self, request: ServiceRequest, form: dict[str, str]) -> str | Reply:
        """The authenticated client_id, or the error reply."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:], validate=True).decode()
            except ValueError:
                decoded = ""
            client_id, _, secret = (unquote(part) for part in decoded.partition(":"))
            scheme = "Basic"
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            scheme = ""
        expected = self.clients.get(client_id, "\0unknown")
        if client_id in self.clients and expected is None and not secret:
            return client_id  # public client
        if expected is None or not hmac.compare_digest(expected, secret):
            extra = {"WWW-Authenticate": 'Basic realm="oauth"'} if scheme else {}
            return _error(401, "invalid_client", "client authentication failed", **extra)
        return client_id

    def _token(self, request: ServiceRequest) -> Reply:
        self.token_requests += 1
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        client = self._client(request, form)
        if isinstance(client, Reply):
            return client
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code_grant(client, form)
        if grant_type == "refresh_token":
            grant = self._refresh.get(form.get("refresh_token", ""))
            if grant is None or grant.client_id != client:
                return _error(400, "invalid_grant", "refresh token invalid, rotated or revoked")
            del self._refresh[form["refresh_token"]]  # rotation: the old one dies now
            return self._issue(grant, refresh=True)
        if grant_type == "client_credentials":
            if self.clients[client] is None:
                return _error(400, "unauthorized_client", "public clients cannot do this")
            return self._issue(_Grant(client, form.get("scope", "")), refresh=False)
        return _error(400, "unsupported_grant_type", f"grant_type {grant_type!r}")

    def _code_grant(self, client: str, form: dict[str, str]) -> Reply:
        code = self._codes.pop(form.get("code", ""), None)  # single use, even when it fails
        if code is None or code.grant.client_id != client or code.expires_at < self.clock():
            return _error(400, "invalid_grant", "authorization code invalid or expired")
        if form.get("redirect_uri") != code.redirect_uri:
            return _error(400, "invalid_grant", "redirect_uri differs from the authorization")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if not 43 <= len(verifier) <= 128 or not hmac.compare_digest(computed, code.challenge):
            return _error(400, "invalid_grant", "PKCE code_verifier does not match")
        return self._issue(code.grant, refresh=True)

    def _issue(self, grant: _Grant, *, refresh: bool) -> Reply:
        access = "at-" + secrets.token_urlsafe(24)
        self._access[access] = (grant, self.clock() + self.expires_in)
        body: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if grant.scope:
            body["scope"] = grant.scope
        if refresh and self.issue_refresh_tokens:
            token = "rt-" + secrets.token_urlsafe(24)
            self._refresh[token] = grant
            body["refresh_token"] = token
        return json_reply(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    # --- /revoke and /resource ---------------------------------------------------------

    def _revoke(self, request: ServiceRequest) -> Reply:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        client = self._client(request, form)
        if isinstance(client, Reply):
            return client
        token = form.get("token")
        if not token:
            return _error(400, "invalid_request", "token is required")
        self.revoked.append(token)
        grant = self._refresh.pop(token, None)
        self._access.pop(token, None)
        if grant is not None:  # RFC 7009 §2.1: revoking a refresh token ends its grant
            for access in [key for key, (owner, _) in self._access.items() if owner is grant]:
                del self._access[access]
        return Reply(200)

    def _resource(self, request: ServiceRequest) -> Reply:
        header = request.headers.get("authorization", "")
        entry = self._access.get(header[7:]) if header.lower().startswith("bearer ") else None
        if entry is None or entry[1] < self.clock():
            return _error(401, "invalid_token", "missing, expired or revoked access token")
        return json_reply(200, {"client_id": entry[0].client_id, "scope": entry[0].scope})
