"""Test support for APIQ and for third-party adapters.

`SpecCacheContract` and `AuditSinkContract` are pytest suites an adapter subclasses to prove
it fits its port (see `apiq.testing.contracts`). They are imported on first use, so that
`import apiq.testing` does not need pytest. `apiq.testing.petstore.PetstoreService` is a real
Petstore on loopback (what `apiq demo` calls), built on `apiq.testing.services`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apiq.testing.contracts import AuditSinkContract, SpecCacheContract, make_cached_spec
    from apiq.testing.secret_store_contract import SecretStoreContract

__all__ = ["AuditSinkContract", "SecretStoreContract", "SpecCacheContract", "make_cached_spec"]


def __getattr__(name: str) -> Any:
    if name == "SecretStoreContract":
        from apiq.testing import secret_store_contract

        return secret_store_contract.SecretStoreContract
    if name in __all__:
        from apiq.testing import contracts

        return getattr(contracts, name)
    raise AttributeError(f"module 'apiq.testing' has no attribute {name!r}")
