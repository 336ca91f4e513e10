"""The public surface of `apiq` is pinned: adding or removing a name is a decision."""

from __future__ import annotations

import apiq

EXPECTED = {
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
    "ExecutionError",
    "EncryptedFileSecretStore",
    "ExternalRefRefused",
    "FileSpecSource",
    "InvalidArguments",
    "HttpSpecSource",
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
}


def test_all_is_pinned() -> None:
    assert set(apiq.__all__) == EXPECTED
    assert len(apiq.__all__) == len(EXPECTED), "duplicate names in __all__"


def test_every_exported_name_exists() -> None:
    for name in apiq.__all__:
        assert getattr(apiq, name) is not None


def test_public_errors_share_one_root() -> None:
    for name in apiq.__all__:
        value = getattr(apiq, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, apiq.ApiqError), name
