"""Secret stores in core: an encrypted JSON file (the SDK default) and memory.

Both implement `apiq.ports.SecretStore` with the envelope encryption of
`apiq.secrets.envelope` under a versioned `KeyRing`; `apiq.testing.SecretStoreContract` is
the suite a third-party store runs against itself, and `seal`/`unseal`/`rewrap` let it
encrypt rows exactly as these do. Database-backed stores live in `apiq_adapters`.
"""

from __future__ import annotations

from apiq.secrets.encrypted_file import EncryptedFileSecretStore
from apiq.secrets.envelope import (
    MAX_SECRET_BYTES,
    KeyRing,
    SealedSecret,
    rewrap,
    rotation_incomplete,
    seal,
    secret_not_found,
    unseal,
)
from apiq.secrets.memory import MemorySecretStore

__all__ = [
    "MAX_SECRET_BYTES",
    "EncryptedFileSecretStore",
    "KeyRing",
    "MemorySecretStore",
    "SealedSecret",
    "rewrap",
    "rotation_incomplete",
    "seal",
    "secret_not_found",
    "unseal",
]
