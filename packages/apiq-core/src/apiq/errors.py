"""Every error APIQ raises, in one tree.

```
ApiqError
├── ConfigurationError
├── SpecError
│   ├── SpecUnreachable
│   ├── SpecTooLarge
│   ├── SpecInvalid
│   ├── ExternalRefRefused
│   ├── OperationNotFound
│   └── ArazzoInvalid
├── SecretNotFound
├── SecretUnreadable
├── StorageError
├── InvalidArguments
├── PlanningError
├── WorkflowError
│   ├── ExpressionError
│   └── PlanInvalid
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
    "ArazzoInvalid",
    "ConfigurationError",
    "ConfirmationRequired",
    "EgressDenied",
    "ExecutionError",
    "ExpressionError",
    "ExternalRefRefused",
    "InvalidArguments",
    "MissingDependencyError",
    "OAuthReconnectRequired",
    "OAuthTokenError",
    "OperationNotFound",
    "PlanInvalid",
    "PlanningError",
    "PolicyViolation",
    "SecretNotFound",
    "SecretUnreadable",
    "SpecError",
    "SpecInvalid",
    "SpecTooLarge",
    "SpecUnreachable",
    "StorageError",
    "WorkflowError",
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


class ArazzoInvalid(SpecError):
    """An Arazzo document is unreadable, breaks the Arazzo 1.0 schema, or cannot become plans.

    Plans cannot hold a step that calls another workflow, an Arazzo source, or `dependsOn`.
    """

    summary = "Arazzo document invalid"

    def __init__(
        self, message: str, *, source: str, path: str | None = None, errors: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, source=source)
        self.path = path
        """JSON path (`$.workflows[0].steps[1]`) of the first problem, when known."""
        self.errors = errors or (message,)
        """Every problem found (capped), each starting with its JSON path."""


class SecretNotFound(ApiqError):
    """No secret is stored under the requested owner and name."""

    summary = "Credential not found"


class StorageError(ApiqError):
    """A database behind a port adapter could not do what was asked (unreachable, locked,
    refused a row). Raised by adapters such as `apiq_adapters.sql`; core has no database."""

    summary = "Storage unavailable"

    def __init__(self, message: str, *, operation: str, backend: str, transient: bool) -> None:
        super().__init__(message)
        self.operation = operation
        """What was attempted, e.g. `audit.record`, `secrets.get`."""
        self.backend = backend
        """`sqlite` or `postgresql`."""
        self.transient = transient
        """True when retrying later may succeed (outage, lock, timeout)."""


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

    def __init__(self, message: str, *, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.suggestions = suggestions
        """The operations closest to the request (`operationId`, or `<source>.<operationId>`
        when several sources were searched), best first: what the user may have meant."""


class WorkflowError(ApiqError):
    """A workflow cannot be run as written: a bad criterion, an unsupported feature, a bound hit.

    `step_id` and `field` say where, when known; the executor fills them in when the code
    that raised did not know them.
    """

    summary = "Invalid workflow"

    def __init__(
        self, message: str, *, step_id: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.step_id = step_id
        """Id of the step the error is about; None for the workflow itself or when unknown."""
        self.field = field
        """Where in the step or workflow: `parameters[0].value`, `successCriteria[1]`, ..."""


class ExpressionError(WorkflowError):
    """A runtime expression is malformed, unsupported, or names a value that is not there."""

    summary = "Invalid workflow expression"

    def __init__(
        self,
        message: str,
        *,
        expression: str,
        step_id: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, step_id=step_id, field=field)
        self.expression = expression
        """The expression (or JSONPath query) as written, truncated when very long."""


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


class PlanInvalid(WorkflowError):
    """A plan does not validate against its connections' catalogs; `problems` lists why."""

    summary = "Invalid plan"

    def __init__(self, message: str, *, problems: tuple[WorkflowError, ...]) -> None:
        first = problems[0] if problems else None
        super().__init__(
            message,
            step_id=first.step_id if first else None,
            field=first.field if first else None,
        )
        self.problems = problems
        """Every problem found, each naming its step and field."""
