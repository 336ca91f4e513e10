"""Every error APIQ raises, in one tree.

```
ApiqError
├── ConfigurationError
├── SpecError
│   ├── SpecUnreachable
│   ├── SpecTooLarge
│   ├── SpecInvalid
│   ├── ExternalRefRefused
│   └── OperationNotFound
├── SecretNotFound
├── SecretUnreadable
├── InvalidArguments
├── PlanningError
├── PolicyViolation
│   ├── EgressDenied
│   ├── ConfirmationRequired
│   └── OAuthReconnectRequired
├── ExecutionError
│   └── OAuthTokenError
└── MissingDependencyError
```

Each error carries fields (`url`, `ref`, `status_code`, ...) as well as text. `str(exc)` is the
full cause, for the SDK user and the audit log; `exc.public_message` is the sanitized text a
server shows to its users, with the reference id of the audit event that holds the details.
"""

from __future__ import annotations

__all__ = [
    "ApiqError",
    "ConfigurationError",
    "ConfirmationRequired",
    "EgressDenied",
    "ExecutionError",
    "ExternalRefRefused",
    "InvalidArguments",
    "MissingDependencyError",
    "OAuthReconnectRequired",
    "OAuthTokenError",
    "OperationNotFound",
    "PlanningError",
    "PolicyViolation",
    "SecretNotFound",
    "SecretUnreadable",
    "SpecError",
    "SpecInvalid",
    "SpecTooLarge",
    "SpecUnreachable",
]


class ApiqError(Exception):
    """Base of every error APIQ raises on purpose."""

    summary: str = "APIQ error"
    """Short, sanitized description safe to show to any user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.reference_id: str | None = None
        """Id of the audit event that records this error's full cause, once recorded."""

    @property
    def public_message(self) -> str:
        """Sanitized text for people who must not see internal details."""
        if self.reference_id:
            return f"{self.summary}, see logs (reference {self.reference_id})"
        return f"{self.summary}, see logs"


class ConfigurationError(ApiqError):
    """A setting or keyword argument is missing or invalid."""

    summary = "Configuration error"


class SpecError(ApiqError):
    """An API description could not be fetched, read or understood."""

    summary = "Spec error"

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source
        """The spec reference (URL or file path) the error is about."""


class SpecUnreachable(SpecError):
    """The spec could not be fetched: network error, timeout, refusal or an HTTP error."""

    summary = "Spec unreachable"

    def __init__(self, message: str, *, source: str, status_code: int | None = None) -> None:
        super().__init__(message, source=source)
        self.status_code = status_code


class SpecTooLarge(SpecError):
    """The spec is larger than the configured byte budget."""

    summary = "Spec too large"

    def __init__(self, message: str, *, source: str, limit: int, size: int | None = None) -> None:
        super().__init__(message, source=source)
        self.limit = limit
        self.size = size


class SpecInvalid(SpecError):
    """The document is not valid JSON/YAML, not OpenAPI, or breaks a parsing bound."""

    summary = "Spec invalid"

    def __init__(self, message: str, *, source: str, pointer: str | None = None) -> None:
        super().__init__(message, source=source)
        self.pointer = pointer
        """JSON Pointer to the offending place in the document, when known."""


class ExternalRefRefused(SpecError):
    """The document has a `$ref` that points outside itself (file, relative or URL)."""

    summary = "Spec refers to an external document"

    def __init__(self, message: str, *, source: str, ref: str) -> None:
        super().__init__(message, source=source)
        self.ref = ref


class OperationNotFound(SpecError):
    """A catalog has no operation with the requested operationId."""

    summary = "Unknown operation"

    def __init__(self, message: str, *, source: str, operation_id: str) -> None:
        super().__init__(message, source=source)
        self.operation_id = operation_id


class SecretNotFound(ApiqError):
    """No secret is stored under the requested owner and name."""

    summary = "Credential not found"


class InvalidArguments(ApiqError):
    """Arguments for an operation do not match its schema or cannot be put into a request."""

    summary = "Invalid arguments"

    def __init__(self, message: str, *, operation_id: str, errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.operation_id = operation_id
        self.errors = errors or (message,)
        """Every problem found (capped), each naming its field as a path: `query.limit: ...`."""


class SecretUnreadable(ApiqError):
    """A stored secret exists but cannot be decrypted: altered, moved, or its key is gone.

    Raised when authentication fails (a flipped byte, a ciphertext swapped from another row)
    or when the key version that wrapped it was retired. Never carries the secret itself.
    """

    summary = "Credential unreadable"

    def __init__(
        self, message: str, *, name: str | None = None, kek_version: int | None = None
    ) -> None:
        super().__init__(message)
        self.name = name
        """Name of the unreadable secret; None when a whole store file is damaged."""
        self.kek_version = kek_version
        """Key version the row was wrapped with, when known."""


class PlanningError(ApiqError):
    """A request could not be turned into a valid plan."""

    summary = "Could not plan the request"


class PolicyViolation(ApiqError):
    """A safety policy refused the action."""

    summary = "Refused by policy"


class EgressDenied(PolicyViolation):
    """The egress policy refused an outbound request."""

    summary = "Outbound request refused"

    def __init__(self, message: str, *, url: str, address: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.address = address
        """The resolved address that was refused, when the refusal came after resolution."""


class ConfirmationRequired(PolicyViolation):
    """A state-changing plan was started without a valid approval."""

    summary = "Approval required"


class ExecutionError(ApiqError):
    """A call could not be made or was refused; upstream 4xx/5xx are results, not this."""

    summary = "Execution failed"

    def __init__(self, message: str, *, operation_id: str | None = None) -> None:
        super().__init__(message)
        self.operation_id = operation_id


class OAuthTokenError(ExecutionError):
    """The token or revocation endpoint failed: unreachable, an OAuth error, or junk.

    `error` is the RFC 6749 §5.2 code (`invalid_client`, `invalid_scope`, ...) or None when
    the endpoint did not answer with one.
    """

    summary = "OAuth token request failed"

    def __init__(
        self, message: str, *, error: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.error = error
        self.status_code = status_code


class OAuthReconnectRequired(PolicyViolation):
    """The grant is gone (`invalid_grant`, revoked, never connected): the user must reconnect.

    Stored tokens of the connection have been deleted when this is raised from a refresh.
    """

    summary = "OAuth connection must be reconnected"

    def __init__(self, message: str, *, connection_id: str, scheme: str, error: str | None) -> None:
        super().__init__(message)
        self.connection_id = connection_id
        self.scheme = scheme
        self.error = error
        """The OAuth error code behind it (`invalid_grant`), or None when nothing is stored."""


class MissingDependencyError(ApiqError, ImportError):
    """An optional backend was used without its extra installed."""

    summary = "Missing optional dependency"
