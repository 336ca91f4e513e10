"""`UserService`: accounts, logins, sessions and admin user management.

The first account of a database becomes its ADMIN; later ones are USERs (`apiq admin
create` makes more admins). Logins answer one generic error for an unknown email, a wrong
password and a disabled account, and are throttled per account and per client address
(`LoginThrottle`). A password change, a role change and disabling end the user's sessions.

Two writers that could break an invariant (two "first" users, two admins demoting each
other) are serialised by `_serialise`, which makes a transaction the only writer of the
users table until it ends.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydantic
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from apiq.errors import ConfigurationError
from apiq.models import AuditEvent, JsonValue, Outcome
from apiq_adapters.sql.tables import login_throttle, users
from apiq_server.auth.current import CurrentUser
from apiq_server.auth.passwords import hash_password, needs_rehash, verify_password
from apiq_server.errors import Conflict, Forbidden, NotFound, RateLimited, Unauthorized
from apiq_server.policy import Role
from apiq_server.schemas.common import Page
from apiq_server.schemas.users import RegisterIn, SessionOut, UserOut, UserPatch

if TYPE_CHECKING:
    from apiq_server.wiring import Services

__all__ = ["LOGIN_FAILED", "LoginThrottle", "UserService"]

TENANT = "default"
"""The tenant of every account (one tenant per deployment until tenants are managed)."""
LOGIN_FAILED = "email or password is wrong"
"""The one answer to every failed login, so it never tells which accounts exist."""
THROTTLE_WINDOW_S = 15 * 60
IP_LIMIT_FACTOR = 5
"""An address may stand for many people (an office behind NAT), so it is allowed this many
times the failures of one account before it is refused."""


def _user_out(row: Any) -> UserOut:
    return UserOut(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        disabled=bool(row.disabled),
        created_at=datetime.fromtimestamp(row.created_at, UTC),
    )


async def _serialise(db: AsyncConnection) -> None:
    """Make the transaction of `db` the only writer of the users table until it ends."""
    if db.dialect.name == "postgresql":
        # Conflicts with itself and with every row write, not with readers (logins go on).
        await db.execute(sa.text(f"LOCK TABLE {users.name} IN SHARE ROW EXCLUSIVE MODE"))
    else:
        # SQLite has one writer at a time: a first statement that writes (even no row) takes
        # that lock, and every read after it sees the newest committed rows.
        await db.execute(users.update().where(sa.false()).values(role=users.c.role))


class LoginThrottle:
    """Counts login attempts per account and per client address in 15-minute windows.

    Each attempt is counted before the password is checked, in one atomic statement per
    key, so parallel guesses cannot all slip in under the limit; a success then gives its
    count back (the account's window is forgotten, the address's count is lowered by one).

    Args:
        engine: The server's database (table `apiq_login_throttle`, shared by processes).
        limit: Failed attempts of one account before it is refused until its window ends.
        clock: POSIX seconds.
    """

    def __init__(
        self, engine: AsyncEngine, *, limit: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self._limits = {"account": limit, "ip": limit * IP_LIMIT_FACTOR}
        self._clock = clock

    @staticmethod
    def _keys(email: str, client: str) -> dict[str, str]:
        return {f"account:{email}": "account", f"ip:{client}": "ip"}

    async def attempt(self, email: str, client: str) -> None:
        """Count one attempt; raise RateLimited when the account or the address is over
        its limit in the current window."""
        now = self._clock()
        start = now - THROTTLE_WINDOW_S
        table = login_throttle
        expired = table.c.window_start <= start
        waits: list[float] = []
        async with self._engine.begin() as db:
            insert = postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert
            for key, kind in self._keys(email, client).items():
                counted = (
                    insert(table)
                    .values(key=key, failures=1, window_start=now)
                    .on_conflict_do_update(
                        index_elements=[table.c.key],
                        set_={
                            "failures": sa.case((expired, 1), else_=table.c.failures + 1),
                            "window_start": sa.case((expired, now), else_=table.c.window_start),
                        },
                    )
                    .returning(table.c.failures, table.c.window_start)
                )
                row = (await db.execute(counted)).one()
                if row.failures > self._limits[kind]:
                    waits.append(row.window_start + THROTTLE_WINDOW_S - now)
            # Rows of ended windows count nothing: dropping them bounds the table. Rows
            # another attempt holds are skipped, so two attempts never wait on each other.
            stale = sa.select(table.c.key).where(table.c.window_start < start)
            await db.execute(
                table.delete().where(table.c.key.in_(stale.with_for_update(skip_locked=True)))
            )
        if waits:
            retry = max(1, math.ceil(max(waits)))
            raise RateLimited(
                f"too many failed logins; try again in {retry} s", retry_after_s=retry
            )

    async def succeeded(self, email: str, client: str) -> None:
        """Give back the attempt of a success: the account starts afresh; the address only
        loses this one attempt (one account's success must not reset a guesser's count)."""
        table = login_throttle
        async with self._engine.begin() as db:
            await db.execute(table.delete().where(table.c.key == f"account:{email}"))
            await db.execute(
                table.update()
                .where(table.c.key == f"ip:{client}", table.c.failures > 0)
                .values(failures=table.c.failures - 1)
            )


class UserService:
    """Accounts and sessions, for one request.

    Args:
        services: The process's services (database, sessions, audit, settings).
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._engine = services.engine
        self._throttle = LoginThrottle(services.engine, limit=services.settings.login_attempts)

    async def register(self, email: str, password: str, *, client: str) -> UserOut:
        """Create a USER account (ADMIN when it is the database's first).

        Raises:
            Conflict: An account with this email exists.
        """
        return await self._create(email, password, admin=False, client=client)

    async def create_admin(self, email: str, password: str) -> UserOut:
        """Create an ADMIN account (`apiq admin create`).

        Raises:
            ConfigurationError: The email or password breaks the rules, or the email is taken.
        """
        try:
            valid = RegisterIn(email=email, password=password)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigurationError(f"cannot create the admin: {problems}") from None
        try:
            return await self._create(valid.email, valid.password, admin=True, client="cli")
        except Conflict as exc:
            raise ConfigurationError(f"cannot create the admin: {exc.message}") from None

    async def _create(self, email: str, password: str, *, admin: bool, client: str) -> UserOut:
        password_hash = await hash_password(password)
        now = time.time()
        user_id = secrets.token_hex(16)
        # Only while the table is empty can this account be the first one; then (and only
        # then) registrations are serialised so two "first" users cannot both become admin.
        first_possible = not admin and await self._empty()
        values = dict(
            id=user_id, tenant=TENANT, email=email, password_hash=password_hash,
            role=Role.ADMIN if admin else Role.USER, disabled=False,
            created_at=now, password_changed_at=now,
        )  # fmt: skip
        try:
            async with self._engine.begin() as db:
                if first_possible:
                    await _serialise(db)
                await db.execute(users.insert().values(**values))
                if first_possible:
                    others = sa.select(users.c.id).where(users.c.id != user_id).exists()
                    await db.execute(
                        users.update().where(users.c.id == user_id, ~others).values(role=Role.ADMIN)
                    )
                row = (await db.execute(sa.select(users).where(users.c.id == user_id))).one()
        except sa.exc.IntegrityError:
            await self._record(
                "auth.register", "anonymous", email, "error", reason="email_taken", client=client
            )
            raise Conflict(
                "an account with this email exists: log in, or register another email"
            ) from None
        user = _user_out(row)
        await self._record(
            "auth.register", user.id, user.id, "ok", email=email, role=user.role, client=client
        )
        return user

    async def _empty(self) -> bool:
        async with self._engine.connect() as db:
            return (await db.execute(sa.select(users.c.id).limit(1))).first() is None

    async def login(self, email: str, password: str, *, client: str) -> SessionOut:
        """Check the password and open a new session.

        Raises:
            Unauthorized: Unknown email, wrong password or disabled account (one message).
            RateLimited: Too many failures for the account or the address (Retry-After).
        """
        try:
            await self._throttle.attempt(email, client)
        except RateLimited:
            await self._record(
                "auth.login", "anonymous", email, "error", reason="throttled", client=client
            )
            raise
        async with self._engine.connect() as db:
            row = (await db.execute(sa.select(users).where(users.c.email == email))).first()
        matches = await verify_password(row.password_hash if row is not None else None, password)
        reason = (
            "unknown_email" if row is None
            else "wrong_password" if not matches
            else "disabled" if row.disabled
            else None
        )  # fmt: skip
        if row is None or reason is not None:
            actor = row.id if row is not None else "anonymous"
            await self._record("auth.login", actor, email, "error", reason=reason, client=client)
            raise Unauthorized(LOGIN_FAILED)
        await self._throttle.succeeded(email, client)
        if needs_rehash(row.password_hash):
            await self._set_hash(row.id, await hash_password(password), changed=False)
        session = await self._open(row)
        await self._record("auth.login", row.id, row.id, "ok", client=client)
        return session

    async def _open(self, row: Any) -> SessionOut:
        opened = await self._services.sessions.open(row.id)
        return SessionOut(
            token=opened.token,
            csrf_token=opened.csrf_token,
            expires_at=datetime.fromtimestamp(opened.expires_at, UTC),
            user=_user_out(row),
        )

    async def _set_hash(self, user_id: str, password_hash: str, *, changed: bool) -> None:
        values: dict[str, Any] = {"password_hash": password_hash}
        if changed:
            values["password_changed_at"] = time.time()
        async with self._engine.begin() as db:
            await db.execute(users.update().where(users.c.id == user_id).values(**values))

    async def logout(self, user: CurrentUser) -> None:
        """End the session the request came with."""
        await self._services.sessions.revoke(user.session_hash)
        await self._record("auth.logout", user.id, user.id, "ok", tenant=user.tenant)

    async def me(self, user: CurrentUser) -> UserOut:
        """The caller's account."""
        return _user_out(await self._row(user.id, user.tenant))

    async def _row(self, user_id: str, tenant: str) -> Any:
        query = sa.select(users).where(users.c.id == user_id, users.c.tenant == tenant)
        async with self._engine.connect() as db:
            row = (await db.execute(query)).first()
        if row is None:
            raise NotFound("user", user_id)
        return row

    async def change_password(
        self, user: CurrentUser, current: str, new: str, *, client: str
    ) -> SessionOut:
        """Set a new password, end every session of the user and open a new one.

        Raises:
            Forbidden: The current password is wrong (counted like a failed login).
            RateLimited: Too many wrong passwords for the account or the address.
        """
        await self._throttle.attempt(user.email, client)
        row = await self._row(user.id, user.tenant)
        if not await verify_password(row.password_hash, current):
            await self._record(
                "auth.password_changed", user.id, user.id, "error",
                tenant=user.tenant, reason="wrong_password", client=client,
            )  # fmt: skip
            raise Forbidden("the current password is wrong")
        await self._throttle.succeeded(user.email, client)
        await self._set_hash(user.id, await hash_password(new), changed=True)
        revoked = await self._services.sessions.revoke_user(user.id)
        session = await self._open(row)
        await self._record(
            "auth.password_changed", user.id, user.id, "ok",
            tenant=user.tenant, sessionsRevoked=revoked, client=client,
        )  # fmt: skip
        return session

    async def list_users(
        self,
        admin: CurrentUser,
        *,
        offset: int,
        limit: int,
        role: Role | None = None,
        disabled: bool | None = None,
        email: str | None = None,
    ) -> Page[UserOut]:
        """The tenant's users, oldest first, optionally filtered (`email`: a substring)."""
        where = [users.c.tenant == admin.tenant]
        if role is not None:
            where.append(users.c.role == role)
        if disabled is not None:
            where.append(users.c.disabled.is_(disabled))
        if email:
            where.append(users.c.email.contains(email.strip().lower(), autoescape=True))
        query = sa.select(users).where(*where).order_by(users.c.created_at, users.c.id)
        async with self._engine.connect() as db:
            total = (await db.execute(sa.select(sa.func.count()).where(*where))).scalar_one()
            rows = (await db.execute(query.offset(offset).limit(limit))).all()
        return Page[UserOut](
            items=[_user_out(row) for row in rows], total=total, offset=offset, limit=limit
        )

    async def update_user(self, admin: CurrentUser, user_id: str, patch: UserPatch) -> UserOut:
        """Change a user's role or disable/enable them; their sessions end on any change of
        role and when disabled.

        Raises:
            NotFound: No such user in the admin's tenant.
            Conflict: The change would leave the tenant without an active admin.
        """
        changes: dict[str, JsonValue] = {}
        values: dict[str, Any] = {}
        async with self._engine.begin() as db:
            await _serialise(db)
            where = (users.c.id == user_id, users.c.tenant == admin.tenant)
            row = (await db.execute(sa.select(users).where(*where))).first()
            if row is None:
                raise NotFound("user", user_id)
            if patch.role is not None and patch.role != row.role:
                values["role"] = patch.role.value
                changes["role"] = {"from": row.role, "to": patch.role.value}
            if patch.disabled is not None and patch.disabled != bool(row.disabled):
                values["disabled"] = patch.disabled
                changes["disabled"] = {"from": bool(row.disabled), "to": patch.disabled}
            if values:
                await db.execute(users.update().where(*where).values(**values))
                await self._keep_an_admin(db, admin.tenant)
            row = (await db.execute(sa.select(users).where(*where))).one()
        revoked = 0
        if "role" in changes or values.get("disabled") is True:
            revoked = await self._services.sessions.revoke_user(user_id)
        await self._record(
            "admin.user_updated", admin.id, user_id, "ok",
            tenant=admin.tenant, changes=changes, sessionsRevoked=revoked,
        )  # fmt: skip
        return _user_out(row)

    @staticmethod
    async def _keep_an_admin(db: AsyncConnection, tenant: str) -> None:
        active = sa.select(sa.func.count()).where(
            users.c.tenant == tenant, users.c.role == Role.ADMIN, users.c.disabled.is_(False)
        )
        if (await db.execute(active)).scalar_one() == 0:
            raise Conflict("this change would leave no active admin: make another user ADMIN first")

    async def _record(
        self,
        action: str,
        actor: str,
        target: str,
        outcome: Outcome,
        *,
        tenant: str = TENANT,
        **detail: JsonValue,
    ) -> None:
        event = AuditEvent(
            action=action,
            actor=actor,
            tenant=tenant,
            outcome=outcome,
            target=target,
            detail=detail,
        )
        await self._services.audit.record(event)
