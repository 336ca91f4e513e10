"""Admin routes: the spec cache (list, purge, audited) and statistics; ADMIN only."""

from __future__ import annotations

import json
import uuid

from apiq.testing.petstore import PETSTORE_API_KEY, PetstoreService
from tests.server.harness import Api, ServerProcess
from tests.server.test_apis import call, database_rows

CACHE = "/api/admin/spec-cache"


def _register(api: Api, petstore: PetstoreService) -> None:
    body = {
        "name": f"petstore-{uuid.uuid4().hex[:6]}",
        "specUrl": petstore.spec_url,
        "credentials": {"api_key": {"value": PETSTORE_API_KEY}},
    }
    call(api, "POST", "/api/apis", status=201, json=body)


def test_admin_lists_and_purges_one_url_then_all(
    admin: Api, alice: Api, server: ServerProcess, petstore_upstream: PetstoreService
) -> None:
    _register(alice, petstore_upstream)
    entries = call(admin, "GET", CACHE)
    entry = next(e for e in entries if e["url"] == petstore_upstream.spec_url)
    assert set(entry) == {"url", "fetchedAt", "ttlRemaining", "sizeBytes"}
    assert entry["ttlRemaining"] > 0
    assert entry["sizeBytes"] > 1000

    assert call(admin, "DELETE", CACHE, params={"url": petstore_upstream.spec_url}) == {"purged": 1}
    assert petstore_upstream.spec_url not in [e["url"] for e in call(admin, "GET", CACHE)]
    _register(alice, petstore_upstream)  # fetched again: the cache was empty for it
    purged = call(admin, "DELETE", CACHE)["purged"]
    assert purged >= 1
    assert call(admin, "GET", CACHE) == []

    rows = database_rows(
        server,
        "SELECT target, detail FROM apiq_audit_log WHERE action = 'admin.spec_cache.purge' "
        "AND actor = :actor ORDER BY seq",
        actor=admin.user["id"],
    )
    assert [row.target for row in rows[-2:]] == [petstore_upstream.spec_url, "all"]
    assert [json.loads(row.detail)["purged"] for row in rows[-2:]] == [1, purged]


def test_spec_cache_and_stats_are_for_admins_only(alice: Api, auditor: Api) -> None:
    for api in (alice, auditor):
        for method, path in (("GET", CACHE), ("DELETE", CACHE), ("GET", "/api/stats")):
            assert call(api, method, path, status=403)["code"] == "forbidden"


def test_stats_count_the_tenant(admin: Api, alice: Api, petstore_upstream: PetstoreService) -> None:
    before = call(admin, "GET", "/api/stats")
    _register(alice, petstore_upstream)
    after = call(admin, "GET", "/api/stats")
    assert after["connections"] == before["connections"] + 1
    assert after["endpoints"] == before["endpoints"] + 20
    assert after["auditEvents"] > before["auditEvents"]
    assert after["users"] >= 2
    assert set(after) == {
        "users", "connections", "endpoints", "executions", "auditEvents", "specCacheEntries",
    }  # fmt: skip
