"""Mask secrets in everything that leaves APIQ: logs, audit events, errors and results.

A `Redactor` learns each secret once (`register`, `register_basic`) and then masks it, and its
common encodings, wherever it appears, including when a target API echoes a credential back.
A masked secret becomes `[REDACTED:<8 hex>]`, the start of its keyed HMAC, so two events can be
correlated without the secret ever being written anywhere in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Final
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

from apiq.egress.policy import display_url
from apiq.errors import ConfigurationError

__all__ = [
    "MIN_SECRET_LENGTH",
    "SENSITIVE_NAMES",
    "RedactingLogFilter",
    "Redactor",
    "mask_logs",
]

MIN_SECRET_LENGTH: Final = 4
"""Secrets shorter than this many bytes are not masked in free text.

Masking "ab" or "1" everywhere would destroy unrelated text; key-based masking (`mask`,
`mask_url`) still hides such values under sensitive names, and `register_basic` still masks the
base64 "user:pass" form, which is always long enough."""

_NAMES = (
    "authorization proxy_authorization cookie set_cookie x_api_key api_key apikey password "
    "passwd secret token access_token refresh_token id_token client_secret x_auth_token "
    "private_key"
)
SENSITIVE_NAMES: Final = frozenset(_NAMES.split())
"""Key, header and query names whose values are masked whether or not they were registered.
Compared after lower-casing and turning `-` into `_`."""

_MIN_HMAC_KEY_BYTES: Final = 16
_MAX_DEPTH: Final = 200  # deeper values are replaced whole: never a RecursionError
_DEPTH_MARKER: Final = "[REDACTED:too-deep]"

# (text pattern, its replacement, bytes pattern, its replacement), swapped as one; the
# patterns are None while nothing is registered (no text to scan at all).
_TextSub = Callable[[re.Match[str]], str]
_BytesSub = Callable[[re.Match[bytes]], bytes]
_State = tuple[re.Pattern[str] | None, _TextSub, re.Pattern[bytes] | None, _BytesSub]
_SCALARS: Final = (bool, int, float)


def _matched_text(match: re.Match[str]) -> str:
    return match[0]  # the replacement while no pattern exists: never called


def _matched_bytes(match: re.Match[bytes]) -> bytes:
    return match[0]


def _is_sensitive(name: str) -> bool:
    return name.strip().lower().replace("-", "_") in SENSITIVE_NAMES


def _b64_forms(raw: bytes) -> set[bytes]:
    """Base64 of `raw` at each of the 3 alignments it can take inside a longer encoded blob."""
    forms = {base64.b64encode(raw), base64.b64encode(raw).rstrip(b"=")}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        # Keep only the characters whose 6 bits all come from `raw`.
        start = -(-offset * 8 // 6)
        end = (offset + len(raw)) * 8 // 6
        if end - start >= MIN_SECRET_LENGTH:
            forms.add(encoded[start:end])
    forms |= {form.replace(b"+", b"-").replace(b"/", b"_") for form in forms}
    return forms


def _forms(raw: bytes) -> set[bytes]:
    """The secret itself and the encodings an API or a log line is likely to carry."""
    forms = {raw} | _b64_forms(raw)
    percent = quote(raw, safe="")
    forms |= {percent.encode(), re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), percent).encode()}
    forms.add(quote_plus(raw, safe="").encode())
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return forms
    forms.add(json.dumps(text)[1:-1].encode())  # as it appears inside a JSON string
    forms.add(json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass"))
    return forms


class Redactor:
    """Masks registered secrets and sensitive-named values; thread-safe.

    Readers never lock: each `register` builds new compiled patterns and swaps them in with one
    attribute assignment, so `mask_text` always sees a complete, consistent set.

    Args:
        hmac_key: Key of the HMAC that fingerprints secrets, at least 16 bytes. Keep it stable
            across restarts so audit fingerprints stay comparable.

    Raises:
        ConfigurationError: If `hmac_key` is not bytes of at least 16 bytes.
    """

    def __init__(self, *, hmac_key: bytes) -> None:
        if not isinstance(hmac_key, bytes) or len(hmac_key) < _MIN_HMAC_KEY_BYTES:
            raise ConfigurationError(
                f"Redactor hmac_key must be at least {_MIN_HMAC_KEY_BYTES} random bytes; "
                "pass e.g. secrets.token_bytes(32) kept in the secret store"
            )
        self._key = hmac_key
        self._lock = threading.Lock()
        self._markers: dict[bytes, str] = {}
        # Registered secrets and their fingerprints: every call re-registers its key and
        # fingerprints it for the audit log.
        self._known: dict[bytes, str] = {}
        self._state: _State = (None, _matched_text, None, _matched_bytes)

    def fingerprint(self, secret: str | bytes) -> str:
        """Return the keyed HMAC-SHA256 of `secret` as 64 hex characters.

        The only form in which a secret may enter an audit event; stable for the same key.
        """
        raw = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
        known = self._known.get(raw)
        return known if known is not None else hmac.digest(self._key, raw, hashlib.sha256).hex()

    def marker(self, secret: str | bytes) -> str:
        """Return the text that replaces `secret`: `[REDACTED:<first 8 hex of its HMAC>]`."""
        return f"[REDACTED:{self.fingerprint(secret)[:8]}]"

    def register(self, secret: str | bytes) -> bool:
        """Mask `secret` and its base64, percent- and JSON-encoded forms from now on.

        Returns:
            False when the secret is shorter than `MIN_SECRET_LENGTH` bytes and was ignored.
        """
        raw = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
        if len(raw) < MIN_SECRET_LENGTH:
            return False
        if raw in self._known:
            return True  # already masked: skip rebuilding every pattern on each call
        fingerprint, marker = self.fingerprint(raw), self.marker(raw)
        with self._lock:
            self._known[raw] = fingerprint
            for form in _forms(raw):
                if len(form) >= MIN_SECRET_LENGTH:
                    self._markers.setdefault(form, marker)
            self._rebuild()
        return True

    def register_basic(self, user: str, password: str) -> None:
        """Mask an HTTP basic credential: the password and base64 of "user:password"."""
        self.register(f"{user}:{password}")
        self.register(password)

    def _rebuild(self) -> None:
        # Longest first: at any position the regex takes the first alternative that matches.
        forms = sorted(self._markers, key=lambda form: (-len(form), form))
        text_markers: dict[str, str] = {}
        for form in forms:
            try:
                text_markers[form.decode("utf-8")] = self._markers[form]
            except UnicodeDecodeError:
                continue
        byte_markers = {form: marker.encode("ascii") for form, marker in self._markers.items()}
        text_re = re.compile("|".join(map(re.escape, text_markers))) if text_markers else None
        bytes_re = re.compile(b"|".join(map(re.escape, forms))) if forms else None

        def text_sub(match: re.Match[str]) -> str:
            return text_markers[match[0]]

        def bytes_sub(match: re.Match[bytes]) -> bytes:
            return byte_markers[match[0]]

        self._state = (text_re, text_sub, bytes_re, bytes_sub)

    def mask_text(self, text: str) -> str:
        """Return `text` with each registered secret (or encoding of one) replaced by its marker."""
        pattern, sub, _, _ = self._state
        return text if pattern is None else pattern.sub(sub, text)

    def mask_bytes(self, data: bytes) -> bytes:
        """Return `data` with every registered secret replaced by its ASCII marker."""
        _, _, pattern, sub = self._state
        return data if pattern is None else pattern.sub(sub, data)

    def mask_pairs(self, pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """Mask `(name, value)` text pairs such as headers, exactly as `mask` masks each pair.

        The value is replaced whole under a sensitive name (unless empty), else masked as
        text like the name.
        """
        mask_text = self.mask_text
        return tuple(
            (mask_text(name), self.marker(value) if value else value)
            if _is_sensitive(name)
            else (mask_text(name), mask_text(value))
            for name, value in pairs
        )

    def mask(self, value: object) -> object:
        """Return a deep copy of a JSON-like value with secrets masked, keys included.

        Strings and bytes are masked like `mask_text`; values under sensitive names (see
        `SENSITIVE_NAMES`, also as `(name, value)` header pairs) are replaced whole unless they
        are None, a bool or empty. Other objects become their masked `str()`.
        """
        return self._mask(value, 0)

    def _mask(self, value: object, depth: int) -> object:
        if depth > _MAX_DEPTH:
            return _DEPTH_MARKER
        # Most frequent first: JSON bodies are mostly strings, dicts and lists.
        if isinstance(value, str):
            return self.mask_text(value)
        if value is None or isinstance(value, _SCALARS):
            return value
        if isinstance(value, bytes):
            return self.mask_bytes(value)
        if isinstance(value, dict | Mapping):
            out: dict[object, object] = {}
            for key, item in value.items():
                sensitive = isinstance(key, str) and _is_sensitive(key)
                masked_key = self._mask(key, depth + 1)
                out[masked_key] = self._whole(item) if sensitive else self._mask(item, depth + 1)
            return out
        if isinstance(value, list | tuple):
            if len(value) == 2 and isinstance(value[0], str) and _is_sensitive(value[0]):
                pair = [self.mask_text(value[0]), self._whole(value[1])]
                return tuple(pair) if isinstance(value, tuple) else pair
            items = [self._mask(item, depth + 1) for item in value]
            return tuple(items) if isinstance(value, tuple) else items
        return self.mask_text(str(value))

    def _whole(self, value: object) -> object:
        if value is None or isinstance(value, bool) or value in ("", b""):
            return value
        if isinstance(value, str | bytes):
            return self.marker(value)
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError, RecursionError):
            text = repr(type(value))
        return self.marker(text)

    def mask_url(self, url: str) -> str:
        """Return `url` with userinfo, sensitive query/fragment values and secrets masked."""
        try:
            parts = urlsplit(url)
        except ValueError:
            # Too broken to find the sensitive pairs: drop user info, query values and
            # fragment as error messages do, rather than trusting registered secrets alone.
            return self.mask_text(display_url(url))
        netloc = parts.netloc
        userinfo, at, hostport = netloc.rpartition("@")
        if at:
            netloc = f"{self.marker(userinfo)}@{hostport}"
        query = self._mask_pairs(parts.query)
        fragment = self._mask_pairs(parts.fragment)
        rebuilt = urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
        return self.mask_text(rebuilt)

    def _mask_pairs(self, encoded: str) -> str:
        # Split by hand so untouched pairs keep their exact original encoding.
        pairs = []
        for pair in encoded.split("&"):
            name, eq, val = pair.partition("=")
            if eq and val and _is_sensitive(unquote_plus(name)):
                val = self.marker(unquote_plus(val))
            pairs.append(f"{name}{eq}{val}")
        return "&".join(pairs)

    def mask_exception(self, exc: BaseException) -> str:
        """Return `str(exc)` with secrets masked; never raises, even if `str(exc)` does."""
        try:
            text = str(exc)
        except Exception:  # a broken __str__ must not hide the original error
            return f"<{type(exc).__name__}: unprintable>"
        return self.mask_text(text)


class RedactingLogFilter(logging.Filter):
    """Masks a Redactor's secrets in the records of one logger; inert once it is gone."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = weakref.ref(redactor)

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self.redactor()
        if redactor is not None:
            try:
                message = record.getMessage()
            except Exception:  # a broken record is logging's problem, not a leak
                return True
            record.msg, record.args = redactor.mask_text(message), ()
        return True


def mask_logs(redactor: Redactor, logger_names: Iterable[str]) -> None:
    """Mask `redactor`'s secrets in every record of these loggers (once per redactor)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        for old in list(logger.filters):
            if isinstance(old, RedactingLogFilter):
                found = old.redactor()
                if found is redactor:
                    break
                if found is None:
                    logger.removeFilter(old)
        else:
            logger.addFilter(RedactingLogFilter(redactor))
