"""Envelope encryption of secrets under a versioned key ring.

Each secret gets its own random 256-bit data key. The value is encrypted with AES-256-GCM
under that data key (96-bit random nonce); the data key is encrypted ("wrapped") with
AES-256-GCM under the newest key-encryption key (KEK) of a `KeyRing`. Rotation only re-wraps
the 32-byte data key, so it is cheap whatever the size of the value.

The associated data (AAD) of both encryptions binds the owner (tenant and principal id) and
the secret's name, which by convention is `<connection id>/<field>` (`conn_7/client_secret`),
so connection and field are bound too. The wrap also binds the key version. A ciphertext
copied into another row, a row relabelled to another owner or version, or one flipped byte
fails authentication and raises `SecretUnreadable`, never returns someone else's value.

Key ring text (in `APIQ_MASTER_KEY` or a key file): entries `v<N>:<key>` separated by commas
or whitespace, each key 32 bytes in base64url (padding optional), e.g. `v1:AAA…,v2:BBB…`; a
single bare key means `v1`. The highest version encrypts new writes; every listed version
can still read. A version removed from the ring is retired: rows it wrapped fail closed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apiq.errors import ConfigurationError, SecretNotFound, SecretUnreadable
from apiq.models import Principal

__all__ = [
    "MAX_SECRET_BYTES",
    "KeyRing",
    "SealedSecret",
    "rewrap",
    "rotation_incomplete",
    "seal",
    "secret_not_found",
    "unseal",
]

MAX_SECRET_BYTES = 1024 * 1024
"""Largest value a store accepts; credentials and token sets are far smaller."""

_KEY_BYTES = 32
_NONCE_BYTES = 12
_WRAPPED_BYTES = _NONCE_BYTES + _KEY_BYTES + 16  # nonce, encrypted data key, GCM tag
_MAX_KEY_FILE_BYTES = 64 * 1024
_FORMAT = "apiq-secret/1"
_GENERATE_HINT = (
    'generate one with: python -c "from apiq.secrets import KeyRing; '
    'print(KeyRing.generate().to_text())"'
)


@dataclass(frozen=True, slots=True, repr=False)
class KeyRing:
    """Versioned key-encryption keys: the newest encrypts, every listed one decrypts.

    Args:
        keys: version (>= 1) to 32-byte key. Never printed: `repr` shows versions only.
    """

    keys: Mapping[int, bytes]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigurationError(f"a key ring needs at least one key; {_GENERATE_HINT}")
        for version, key in self.keys.items():
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise ConfigurationError(f"key versions are integers >= 1, got {version!r}")
            if not isinstance(key, bytes) or len(key) != _KEY_BYTES:
                raise ConfigurationError(f"key v{version} is not 32 bytes; {_GENERATE_HINT}")
        object.__setattr__(self, "keys", MappingProxyType(dict(sorted(self.keys.items()))))

    def __repr__(self) -> str:
        return f"KeyRing(versions={list(self.keys)}, newest={self.newest})"

    @property
    def newest(self) -> int:
        """The version that wraps every new write and every rotated row."""
        return max(self.keys)

    @classmethod
    def generate(cls, version: int = 1) -> KeyRing:
        """A ring of one fresh random key (for tests, or to print a new master key)."""
        return cls({version: AESGCM.generate_key(bit_length=256)})

    def with_new_key(self) -> KeyRing:
        """This ring plus a fresh random key one version above the newest."""
        return KeyRing({**self.keys, self.newest + 1: AESGCM.generate_key(bit_length=256)})

    def without(self, version: int) -> KeyRing:
        """This ring with `version` retired; rows it still wraps will fail closed."""
        return KeyRing({v: key for v, key in self.keys.items() if v != version})

    def to_text(self) -> str:
        """The ring as `v1:<key>,v2:<key>`: secret material, for a key file or a vault."""
        return ",".join(
            f"v{v}:{base64.urlsafe_b64encode(key).decode('ascii').rstrip('=')}"
            for v, key in self.keys.items()
        )

    @classmethod
    def parse(cls, text: str, *, source: str = "APIQ_MASTER_KEY") -> KeyRing:
        """The ring a key text describes (format in the module docstring).

        Raises:
            ConfigurationError: malformed text; the message names `source` and the entry's
                position, never the key.
        """
        entries = text.replace(",", " ").split()
        if not entries:
            raise ConfigurationError(f"{source} holds no key; {_GENERATE_HINT}")
        keys: dict[int, bytes] = {}
        for position, entry in enumerate(entries, start=1):
            label, sep, encoded = entry.partition(":")
            if not sep and len(entries) == 1:
                label, encoded = "v1", entry
            number = label[1:] if label[:1] in {"v", "V"} else ""
            if not number.isascii() or not number.isdigit() or int(number) < 1:
                raise ConfigurationError(
                    f"{source} entry {position} does not start with a version like 'v1:'; "
                    "write entries as v1:<key>,v2:<key>"
                )
            version = int(number)
            if version in keys:
                raise ConfigurationError(f"{source} lists version v{version} twice; keep one")
            key = _decode_key(encoded)
            if key is None:
                raise ConfigurationError(
                    f"{source} entry {position} (v{version}) is not 32 bytes of base64url; "
                    + _GENERATE_HINT
                )
            keys[version] = key
        return cls(keys)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, variable: str = "APIQ_MASTER_KEY"
    ) -> KeyRing:
        """The ring in the environment variable `variable` (of `os.environ` by default).

        Raises:
            ConfigurationError: the variable is unset, empty or malformed.
        """
        text = (os.environ if environ is None else environ).get(variable, "")
        if not text.strip():
            raise ConfigurationError(
                f"{variable} is not set: set it to a key ring (v1:<key>) or use a key file; "
                + _GENERATE_HINT
            )
        return cls.parse(text, source=variable)

    @classmethod
    def create_file(cls, path: Path | str) -> KeyRing:
        """Write a new one-key ring to `path`, readable and writable by its owner only (0o600).

        Raises:
            ConfigurationError: `path` already exists (load it with `from_file`).
        """
        path = Path(path)
        ring = cls.generate()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConfigurationError(
                f"the key file {path} already exists; load it with KeyRing.from_file"
            ) from None
        try:
            os.fchmod(fd, 0o600)  # the umask can only narrow the mode, but be explicit
            os.write(fd, (ring.to_text() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return ring

    @classmethod
    def from_file(cls, path: Path | str, *, create: bool = False) -> KeyRing:
        """The ring in the key file `path`; with `create`, a new file is made when absent.

        Raises:
            ConfigurationError: the file is missing, readable or writable by group or
                others, too large, or malformed.
        """
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            if create:
                try:
                    return cls.create_file(path)
                except ConfigurationError:
                    return cls.from_file(path)  # another process created it meanwhile
            raise ConfigurationError(
                f"the key file {path} does not exist; create one with KeyRing.create_file"
            ) from None
        try:
            info = os.fstat(fd)  # the opened file, not a path that may have been swapped
            if os.name == "posix" and info.st_mode & 0o077:
                raise ConfigurationError(
                    f"the key file {path} is accessible by group or others "
                    f"(mode {stat.filemode(info.st_mode)}); "
                    f"restrict it with: chmod 600 {path}"
                )
            data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) > _MAX_KEY_FILE_BYTES:
            raise ConfigurationError(f"the key file {path} is larger than a key ring can be")
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"the key file {path} is not ASCII text of entries v1:<key>"
            ) from None
        return cls.parse(text, source=f"key file {path}")


def _decode_key(encoded: str) -> bytes | None:
    if not encoded.isascii():
        return None
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == _KEY_BYTES else None


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """One stored row: who owns it, its name, and the encrypted value. Holds no clear text."""

    tenant: str
    principal_id: str
    name: str
    kek_version: int
    wrapped_key: bytes = field(repr=False)
    """Wrap nonce (12 bytes) + the data key encrypted under the KEK + GCM tag (60 bytes)."""
    nonce: bytes = field(repr=False)
    """Nonce of the value encryption."""
    ciphertext: bytes = field(repr=False)
    """The value encrypted under the data key, with its GCM tag."""

    @property
    def key(self) -> tuple[str, str, str]:
        """(tenant, principal id, name): the identity a store indexes rows by."""
        return (self.tenant, self.principal_id, self.name)


@functools.lru_cache(maxsize=1024)  # read on every call that attaches a credential
def _aad(part: str, tenant: str, principal_id: str, name: str, kek_version: int | None) -> bytes:
    # A JSON array is unambiguous ("a/b"+"c" differs from "a"+"b/c") and, being ASCII-escaped,
    # encodes any str, even lone surrogates.
    return json.dumps(
        [_FORMAT, part, tenant, principal_id, name, kek_version], separators=(",", ":")
    ).encode("ascii")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a secret name is a non-empty string, got {name!r:.80}")


def seal(keyring: KeyRing, principal: Principal, name: str, value: bytes) -> SealedSecret:
    """Encrypt `value` for (principal, name) under a new data key and the newest KEK.

    Raises:
        ConfigurationError: empty name, or a value over `MAX_SECRET_BYTES`.
        TypeError: `value` is not bytes.
    """
    _check_name(name)
    if not isinstance(value, bytes):
        raise TypeError(f"a secret value is bytes, got {type(value).__name__}; encode it first")
    if len(value) > MAX_SECRET_BYTES:
        raise ConfigurationError(
            f"the secret {name!r:.80} is {len(value)} bytes, over the {MAX_SECRET_BYTES} limit"
        )
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    value_aad = _aad("value", principal.tenant, principal.id, name, None)
    ciphertext = AESGCM(data_key).encrypt(nonce, value, value_aad)
    return SealedSecret(
        tenant=principal.tenant,
        principal_id=principal.id,
        name=name,
        kek_version=keyring.newest,
        wrapped_key=_wrap(keyring, principal.tenant, principal.id, name, data_key),
        nonce=nonce,
        ciphertext=ciphertext,
    )


def _wrap(keyring: KeyRing, tenant: str, principal_id: str, name: str, data_key: bytes) -> bytes:
    version = keyring.newest
    wrap_nonce = secrets.token_bytes(_NONCE_BYTES)
    aad = _aad("key", tenant, principal_id, name, version)
    return wrap_nonce + AESGCM(keyring.keys[version]).encrypt(wrap_nonce, data_key, aad)


def _unreadable(sealed: SealedSecret, why: str) -> SecretUnreadable:
    return SecretUnreadable(
        f"the secret {sealed.name!r:.100} of principal {sealed.principal_id!r:.100} "
        f"(tenant {sealed.tenant!r:.100}, key v{sealed.kek_version}) cannot be decrypted: "
        f"{why}",
        name=sealed.name,
        kek_version=sealed.kek_version,
    )


def _unwrap(keyring: KeyRing, sealed: SealedSecret) -> bytes:
    kek = keyring.keys.get(sealed.kek_version)
    if kek is None:
        raise _unreadable(
            sealed,
            f"key version v{sealed.kek_version} is not in the key ring (retired?); "
            f"the ring holds {['v' + str(v) for v in keyring.keys]}. Put the retired key back "
            "and run rotate(), or store the credential again",
        )
    wrapped = sealed.wrapped_key
    aad = _aad("key", sealed.tenant, sealed.principal_id, sealed.name, sealed.kek_version)
    try:
        if len(wrapped) != _WRAPPED_BYTES:
            raise InvalidTag
        return AESGCM(kek).decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], aad)
    except (InvalidTag, ValueError, OverflowError):
        raise _unreadable(
            sealed,
            "its wrapped data key fails authentication (altered, copied from another row, or "
            "the key under this version changed); restore the store from a backup or store "
            "the credential again",
        ) from None


def unseal(keyring: KeyRing, sealed: SealedSecret) -> bytes:
    """The clear value of a sealed row.

    Raises:
        SecretUnreadable: the row's key version is retired, or any part of the row was
            altered or moved from another row.
    """
    data_key = _unwrap(keyring, sealed)
    aad = _aad("value", sealed.tenant, sealed.principal_id, sealed.name, None)
    try:
        if len(sealed.nonce) != _NONCE_BYTES:
            raise InvalidTag
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except (InvalidTag, ValueError, OverflowError):
        raise _unreadable(
            sealed,
            "its ciphertext fails authentication (altered, or copied from another row); "
            "restore the store from a backup or store the credential again",
        ) from None


def rewrap(keyring: KeyRing, sealed: SealedSecret) -> SealedSecret:
    """The same row with its data key wrapped under the newest KEK (the value is untouched).

    Raises:
        SecretUnreadable: the row's key version is retired or its wrapped key was altered.
    """
    if sealed.kek_version == keyring.newest:
        return sealed
    data_key = _unwrap(keyring, sealed)
    wrapped = _wrap(keyring, sealed.tenant, sealed.principal_id, sealed.name, data_key)
    return replace(sealed, kek_version=keyring.newest, wrapped_key=wrapped)


def secret_not_found(principal: Principal, name: str) -> SecretNotFound:
    """The error for a missing row; identical whether or not another principal has one."""
    return SecretNotFound(
        f"no secret named {name!r:.100} for principal {principal.id!r:.100} "
        f"(tenant {principal.tenant!r:.100}); store it with put() or reconnect the credential"
    )


def rotation_incomplete(moved: int, failures: Sequence[SecretUnreadable]) -> SecretUnreadable:
    """The error `rotate()` raises after moving what it could when some rows are unreadable."""
    first = failures[0]
    return SecretUnreadable(
        f"rotation moved {moved} rows but {len(failures)} could not be re-wrapped and still "
        f"use their old key; the first: {first.message}",
        name=first.name,
        kek_version=first.kek_version,
    )
