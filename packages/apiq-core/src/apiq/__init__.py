"""APIQ: plain English to safe, reviewed REST API calls over your OpenAPI descriptions.

Start with `Apiq`, the SDK's front door:

```python
async with Apiq() as apiq:
    catalog = await apiq.load("openapi.yaml")
```

Ports (`apiq.ports`) let you swap any backend; `apiq.testing` has their contract suites.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from apiq.audit import JsonlAuditSink, LoggingAuditSink, MemoryAuditSink
from apiq.catalog import (
    Catalog,
    CatalogWarning,
    Operation,
    Parameter,
    RequestBody,
    Response,
    SecurityScheme,
    Server,
    ServerVariable,
)
from apiq.client import Apiq
from apiq.config import CacheSettings, SpecLimits
from apiq.egress import EgressPolicy
from apiq.errors import (
    ApiqError,
    ConfigurationError,
    ConfirmationRequired,
    EgressDenied,
    ExecutionError,
    ExternalRefRefused,
    InvalidArguments,
    MissingDependencyError,
    OAuthReconnectRequired,
    OAuthTokenError,
    OperationNotFound,
    PlanningError,
    PolicyViolation,
    SecretNotFound,
    SecretUnreadable,
    SpecError,
    SpecInvalid,
    SpecTooLarge,
    SpecUnreachable,
)
from apiq.models import AuditEvent, AuditQuery, Principal
from apiq.secrets import EncryptedFileSecretStore, KeyRing, MemorySecretStore
from apiq.specs.cache import MemorySpecCache
from apiq.specs.file_source import FileSpecSource
from apiq.specs.http_source import HttpSpecSource
from apiq.specs.ingest import SpecIngestor
from apiq.specs.parse import parse_spec

try:
    __version__ = version("apiq-core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "Apiq",
    "ApiqError",
    "AuditEvent",
    "AuditQuery",
    "CacheSettings",
    "Catalog",
    "CatalogWarning",
    "ConfigurationError",
    "ConfirmationRequired",
    "EgressDenied",
    "EgressPolicy",
    "EncryptedFileSecretStore",
    "ExecutionError",
    "ExternalRefRefused",
    "FileSpecSource",
    "HttpSpecSource",
    "InvalidArguments",
    "JsonlAuditSink",
    "KeyRing",
    "LoggingAuditSink",
    "MemoryAuditSink",
    "MemorySecretStore",
    "MemorySpecCache",
    "MissingDependencyError",
    "OAuthReconnectRequired",
    "OAuthTokenError",
    "Operation",
    "OperationNotFound",
    "Parameter",
    "PlanningError",
    "PolicyViolation",
    "Principal",
    "RequestBody",
    "Response",
    "SecretNotFound",
    "SecretUnreadable",
    "SecurityScheme",
    "Server",
    "ServerVariable",
    "SpecError",
    "SpecIngestor",
    "SpecInvalid",
    "SpecLimits",
    "SpecTooLarge",
    "SpecUnreachable",
    "__version__",
    "parse_spec",
]
