"""schemathesis against the app's own `/schema/openapi.json`, once per role, on both backends.

Every phase runs (examples, coverage, fuzzing, stateful), with a fixed seed, bounded
examples and every default check (not_a_server_error, status_code_conformance,
content_type_conformance, response_schema_conformance, response_headers_conformance,
negative_data_rejection, positive_data_acceptance, use_after_free, ignored_auth, ...).
The run must end with no failure and no error; each failure is a server bug, reported
with its operation, check and a curl command that reproduces it.

Nothing is excluded and every check keeps its defaults, except that
positive_data_acceptance also accepts 422 (see ACCEPTED). Requests carry a bearer token
from a schemathesis auth provider that logs in; when a generated request ends the session
(`POST /api/auth/logout`), the next 401 makes schemathesis log in again and replay, so
logout is tested like any other route.

These runs get their own server per backend: fuzzing `POST /api/auth/login` fails logins
by the hundred, and on the session servers the per-address throttle would then refuse
every other test's logins for 15 minutes (`APIQ_LOGIN_ATTEMPTS` is raised here instead).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import Status, StopReason, events, from_schema

from apiq.testing.petstore import PetstoreService
from tests.server.harness import ServerProcess, login, register, scratch_postgres

# Opt-in until its first clean CI run: the fixes for what it found landed just before this
# session ended and have passed only outside CI (see the project notes).
pytestmark = pytest.mark.skipif(
    not os.environ.get("APIQ_SCHEMATHESIS"),
    reason="schemathesis fuzzing is opt-in for now: set APIQ_SCHEMATHESIS=1",
)

SEED = 20250806
MAX_EXAMPLES = 10
STATEFUL_STEPS = 20
WORKERS = 2
BACKENDS = ("sqlite", "postgresql")
ROLES = ("USER", "AUDITOR", "ADMIN")
ADMIN_EMAIL = "admin@example.com"
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
"""What positive_data_acceptance counts as accepting a schema-valid request: its defaults
plus 422. A 422 refuses what no schema can express (planning with no API connected, a
spec URL that does not answer, an Arazzo document that names no known operation); a 400
(the request breaks the documented schema) still fails the check. 5xx fail
not_a_server_error instead."""


@dataclass
class Outcome:
    """What one schemathesis run found; failures grouped by (operation, check, title)."""

    failures: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    phases: dict[str, str] = field(default_factory=dict)
    stop_reason: str = ""
    operations: set[str] = field(default_factory=set)
    cases: int = 0

    def report(self) -> str:
        """Each kind of failure once, with its count and first example; then the errors."""
        kinds = sorted(self.failures.items(), key=lambda item: -len(item[1]))
        lines = [f"{len(examples)}x {label} {check}: {title}\n{examples[0]}"
                 for (label, check, title), examples in kinds]  # fmt: skip
        return "\n\n".join([*lines, *self.errors])


@pytest.fixture(scope="module", params=BACKENDS)
def fuzzed_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    petstore_upstream: PetstoreService,
) -> Iterator[ServerProcess]:
    """A server for schemathesis alone, its admin registered."""
    backend: str = request.param
    folder: Path = tmp_path_factory.mktemp(f"schemathesis-{backend}")
    with _database(backend, folder) as database_url:
        process = ServerProcess(
            env={
                "APIQ_DATABASE_URL": database_url,
                "APIQ_KEY_FILE": str(folder / "master.key"),
                "APIQ_EGRESS_ALLOW": f"127.0.0.1:{petstore_upstream.port}",
                "APIQ_MODE": "development",
                "APIQ_RATE_LIMIT_PER_MINUTE": "100000",
                "APIQ_LOGIN_ATTEMPTS": "1000000",
            },
            log_path=folder / "server.log",
        ).start()
        try:
            register(process.base_url, ADMIN_EMAIL).client.close()
            yield process
        finally:
            process.stop()


def _database(backend: str, folder: Path) -> AbstractContextManager[str]:
    if backend == "postgresql":
        return scratch_postgres("apiq_fuzz")
    return nullcontext(f"sqlite:///{folder / 'apiq.sqlite'}")


@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_finds_nothing(fuzzed_server: ServerProcess, role: str) -> None:
    email = _account(fuzzed_server.base_url, role)
    outcome = run_schemathesis(fuzzed_server.base_url, email)
    assert outcome.stop_reason == StopReason.COMPLETED, f"{outcome.stop_reason}\n{outcome.report()}"
    found = sum(len(examples) for examples in outcome.failures.values()) + len(outcome.errors)
    assert found == 0, (
        f"{found} failures and errors in {outcome.cases} cases as {role} "
        f"({len(outcome.failures)} kinds):\n{outcome.report()}"
    )
    # The document holds no examples, so that phase has nothing to send; the others must run.
    assert outcome.phases.get("examples") in (Status.SUCCESS, Status.SKIP), outcome.phases
    for phase in ("coverage", "fuzzing", "stateful"):
        assert outcome.phases.get(phase) == Status.SUCCESS, outcome.phases
    assert len(outcome.operations) >= 20, sorted(outcome.operations)


def _account(base_url: str, role: str) -> str:
    """The email of a fresh account with `role` (the admin's own for ADMIN)."""
    if role == "ADMIN":
        return ADMIN_EMAIL
    with register(base_url) as user:
        if role != "USER":
            with login(base_url, ADMIN_EMAIL) as admin:
                admin.data("PATCH", f"/api/admin/users/{user.user['id']}", json={"role": role})
        return str(user.user["email"])


def run_schemathesis(base_url: str, email: str) -> Outcome:
    """Every phase of schemathesis against `base_url`, logged in as `email`."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "continue-on-failure": True,
            "request-timeout": 30,
            "workers": WORKERS,
            "max-stream-events": 20,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "phases": {"stateful": {"enabled": True, "max-steps": STATEFUL_STEPS}},
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json", config=config)

    @schema.auth(refresh_interval=3600, retry_on=[401])
    class _Login:
        """A fresh session whenever the last one ended (logout, password change)."""

        def get(self, case: schemathesis.Case[Any], context: schemathesis.AuthContext) -> str:
            with login(base_url, email) as session:
                return str(session.token)

        def set(
            self, case: schemathesis.Case[Any], data: str, context: schemathesis.AuthContext
        ) -> None:
            case.headers["Authorization"] = f"Bearer {data}"

    outcome = Outcome()
    for event in from_schema(schema).execute():
        _collect(event, outcome)
    return outcome


def _collect(event: events.EngineEvent, outcome: Outcome) -> None:
    if isinstance(event, events.PhaseFinished):
        outcome.phases[str(event.phase.name)] = event.status
    elif isinstance(event, events.ScenarioFinished):
        outcome.operations.add(event.recorder.label)
        outcome.cases += len(event.recorder.cases)
        for case_id, checks in event.recorder.checks.items():
            for check in checks:
                if check.status == Status.FAILURE and check.failure_info is not None:
                    failure = check.failure_info.failure
                    key = (failure.operation or event.recorder.label, check.name, failure.title)
                    outcome.failures.setdefault(key, []).append(_describe(event, case_id, check))
    elif isinstance(event, events.NonFatalError):
        outcome.errors.append(f"error in {event.label}: {event.info.format()}")
    elif isinstance(event, events.FatalError):
        outcome.errors.append(f"fatal: {event.exception!r}")
    elif isinstance(event, events.EngineFinished):
        outcome.stop_reason = str(event.stop_reason)
        outcome.errors += [f"after run: {failure!r}" for failure in event.failures]


def _describe(event: events.ScenarioFinished, case_id: str, check: Any) -> str:
    failure = check.failure_info.failure
    interaction = event.recorder.interactions.get(case_id)
    answer = ""
    if interaction is not None and interaction.response is not None:
        body = (interaction.response.content or b"")[:400].decode("utf-8", "replace")
        answer = f"\n  -> {interaction.response.status_code} {body}"
    sample = check.failure_info.code_sample[:1200]
    return f"  [{event.phase}] {failure.message[:600]}\n  {sample}{answer}"
