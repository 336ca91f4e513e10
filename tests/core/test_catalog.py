"""OpenAPI 3.x -> Catalog: ids, merging, defaults, security, servers, lookups, warnings."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.catalog import Catalog, build_catalog, synthesize_operation_id
from apiq.errors import ApiqError, ExternalRefRefused, OperationNotFound, SpecInvalid


def doc(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Test API", "version": "1"},
        "paths": paths,
        **extra,
    }


def ok(op_id: str | None = None, **fields: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"responses": {"200": {"description": "OK"}}, **fields}
    if op_id is not None:
        op["operationId"] = op_id
    return op


def build(document: dict[str, Any], **kwargs: Any) -> Catalog:
    return build_catalog(document, source="test.json", **kwargs)


def codes(catalog: Catalog) -> list[str]:
    return [w.code for w in catalog.warnings]


# -- operations and ids -----------------------------------------------------------------


def test_operations_in_document_order_with_catalog_fields() -> None:
    catalog = build(
        doc(
            {
                "/pets": {"get": ok("listPets", tags=["pets"]), "post": ok("createPet")},
                "/pets/{id}": {"delete": ok("deletePet", deprecated=True)},
            }
        )
    )
    assert [(o.method, o.path, o.operation_id) for o in catalog] == [
        ("get", "/pets", "listPets"),
        ("post", "/pets", "createPet"),
        ("delete", "/pets/{id}", "deletePet"),
    ]
    assert (catalog.name, catalog.title, catalog.version, catalog.spec_version) == (
        "test-api",
        "Test API",
        "1",
        "3.0.3",
    )
    assert catalog.operation("deletePet").deprecated
    assert catalog.operation("deletePet").pointer == "/paths/~1pets~1{id}/delete"
    assert "deprecated" in codes(catalog)
    assert len(catalog) == 3


def test_non_operation_keys_of_a_path_item_are_not_operations() -> None:
    item = {
        "summary": "s",
        "description": "d",
        "parameters": [],
        "servers": [{"url": "https://x"}],
        "x-extra": {"get": "no"},
        "get": ok("a"),
    }
    assert [o.operation_id for o in build(doc({"/a": item}))] == ["a"]


def test_missing_ids_are_synthesized_readably_and_warned() -> None:
    catalog = build(doc({"/repos/{owner}/{repo}": {"get": ok()}, "/": {"get": ok()}}))
    first, root = catalog.operations
    assert first.operation_id == "get_repos_owner_repo"
    assert first.operation_id_synthesized
    assert root.operation_id == "get_root"
    assert codes(catalog).count("missing-operation-id") == 2


def test_duplicate_ids_keep_the_first_and_suffix_the_rest() -> None:
    catalog = build(
        doc({"/a": {"get": ok("dup")}, "/b": {"get": ok("dup")}, "/c": {"get": ok("dup")}})
    )
    assert [o.operation_id for o in catalog] == ["dup", "dup_2", "dup_3"]
    assert [o.operation_id_synthesized for o in catalog] == [False, True, True]
    assert codes(catalog).count("duplicate-operation-id") == 2


def test_made_up_ids_never_take_an_id_stated_later() -> None:
    catalog = build(doc({"/a": {"get": ok()}, "/b": {"get": ok("get_a")}}))
    assert [o.operation_id for o in catalog] == ["get_a_2", "get_a"]


def test_camel_case_path_words_become_snake_case() -> None:
    assert synthesize_operation_id("get", "/userProfiles/{userId}") == "get_user_profiles_user_id"
    assert synthesize_operation_id("post", "/users/{user-id}/microsoft.graph.delta()") == (
        "post_users_user_id_microsoft_graph_delta"
    )


paths = st.lists(
    st.lists(
        st.one_of(st.from_regex(r"[A-Za-z0-9_.-]{1,6}", fullmatch=True), st.just("{id}")),
        min_size=0,
        max_size=4,
    ).map(lambda words: "/" + "/".join(words)),
    min_size=1,
    max_size=12,
    unique=True,
)


@settings(max_examples=100, deadline=None)
@given(paths=paths, methods=st.lists(st.sampled_from(["get", "post", "put"]), min_size=1))
def test_synthesized_ids_are_unique_and_deterministic(paths: list[str], methods: list[str]) -> None:
    document = doc({path: {m: ok() for m in methods} for path in paths})
    first = [o.operation_id for o in build(document)]
    again = [o.operation_id for o in build(copy.deepcopy(document))]
    assert first == again
    assert len(set(first)) == len(first)


# -- parameters --------------------------------------------------------------------------


def test_parameters_merge_path_level_and_operation_level_by_name_and_in() -> None:
    catalog = build(
        doc(
            {
                "/items/{id}": {
                    "parameters": [
                        {"name": "id", "in": "path", "schema": {"type": "string"}},
                        {"name": "q", "in": "query", "description": "path level"},
                        {"name": "q", "in": "header"},
                    ],
                    "get": ok(
                        "get",
                        parameters=[
                            {"name": "q", "in": "query", "description": "op level"},
                            {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                        ],
                    ),
                }
            }
        )
    )
    params = catalog.operation("get").parameters
    assert [(p.name, p.location) for p in params] == [
        ("id", "path"),
        ("q", "query"),
        ("q", "header"),
        ("limit", "query"),
    ]
    assert params[1].description == "op level"


def test_parameter_defaults_follow_openapi() -> None:
    params = [
        {"name": "p", "in": "path", "required": False},
        {"name": "q", "in": "query"},
        {"name": "h", "in": "header"},
        {"name": "c", "in": "cookie"},
        {"name": "d", "in": "query", "style": "deepObject"},
        {"name": "e", "in": "query", "explode": False},
    ]
    catalog = build(doc({"/{p}": {"get": ok("op", parameters=params)}}))
    got = {p.name: (p.style, p.explode, p.required) for p in catalog.operation("op").parameters}
    assert got == {
        "p": ("simple", False, True),  # path parameters are always required
        "q": ("form", True, False),
        "h": ("simple", False, False),
        "c": ("form", True, False),
        "d": ("deepObject", False, False),
        "e": ("form", False, False),
    }


def test_referenced_parameters_are_resolved_and_shared() -> None:
    document = doc(
        {
            "/a/{owner}": {"get": ok("a", parameters=[{"$ref": "#/components/parameters/owner"}])},
            "/b/{owner}": {"get": ok("b", parameters=[{"$ref": "#/components/parameters/owner"}])},
        },
        components={
            "parameters": {"owner": {"name": "owner", "in": "path", "schema": {"type": "string"}}}
        },
    )
    catalog = build(document)
    (a,), (b,) = catalog.operation("a").parameters, catalog.operation("b").parameters
    assert a.name == "owner"
    assert a.required
    assert a.schema == {"type": "string"}
    assert a is b


def test_content_parameters_and_ignored_headers() -> None:
    params = [
        {
            "name": "filter",
            "in": "query",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        {"name": "Authorization", "in": "header", "schema": {"type": "string"}},
        {"name": "accept", "in": "header"},
        {"name": "bad", "in": "body"},
        {"in": "query"},
    ]
    catalog = build(doc({"/a": {"get": ok("a", parameters=params)}}))
    (only,) = catalog.operation("a").parameters
    assert (only.name, only.content_type, only.schema) == (
        "filter",
        "application/json",
        {"type": "object"},
    )
    assert codes(catalog).count("invalid-parameter") == 2


# -- bodies, responses ------------------------------------------------------------------------


def test_request_bodies_and_responses_resolve_refs() -> None:
    document = doc(
        {
            "/a": {
                "post": {
                    "operationId": "a",
                    "requestBody": {"$ref": "#/components/requestBodies/Pet"},
                    "responses": {
                        "200": {"$ref": "#/components/responses/Pet"},
                        "default": {"description": "error"},
                    },
                }
            }
        },
        components={
            "requestBodies": {
                "Pet": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}},
                        "text/plain": {},
                    },
                }
            },
            "responses": {"Pet": {"description": "a pet", "content": {"application/json": {}}}},
            "schemas": {"Pet": {"type": "object"}},
        },
    )
    op = build(document).operation("a")
    assert op.request_body is not None
    assert op.request_body.required
    assert op.request_body.content == {
        "application/json": {"$ref": "#/components/schemas/Pet"},
        "text/plain": {},
    }
    assert [(r.status, r.description, dict(r.content)) for r in op.responses] == [
        ("200", "a pet", {"application/json": {}}),
        ("default", "error", {}),
    ]


def test_a_dangling_ref_skips_that_piece_only() -> None:
    document = doc(
        {
            "/a": {
                "get": ok(
                    "a",
                    parameters=[
                        {"$ref": "#/components/parameters/nope"},
                        {"name": "q", "in": "query"},
                    ],
                    requestBody={"$ref": "#/components/requestBodies/nope"},
                )
            },
            "/b": {"$ref": "#/components/pathItems/nope"},
            "/c": {"get": ok("c")},
        }
    )
    catalog = build(document)
    assert [o.operation_id for o in catalog] == ["a", "c"]
    assert [p.name for p in catalog.operation("a").parameters] == ["q"]
    assert catalog.operation("a").request_body is None
    assert codes(catalog).count("dangling-ref") == 3


def test_an_external_ref_in_an_operation_fails_loudly() -> None:
    document = doc({"/a": {"get": ok("a", parameters=[{"$ref": "other.json#/p"}])}})
    with pytest.raises(ExternalRefRefused) as info:
        build(document)
    assert info.value.ref == "other.json#/p"


def test_path_item_refs_are_followed() -> None:
    document = doc(
        {"/a": {"get": ok("a")}, "/b": {"$ref": "#/paths/~1a"}},
    )
    assert [(o.path, o.operation_id) for o in build(document)] == [("/a", "a"), ("/b", "a_2")]


# -- security, servers, state ----------------------------------------------------------------


def test_security_inheritance() -> None:
    document = doc(
        {
            "/inherit": {"get": ok("inherit")},
            "/none": {"get": ok("none", security=[])},
            "/own": {"get": ok("own", security=[{"oauth": ["read", "write"]}, {}])},
        },
        security=[{"key": []}],
        components={
            "securitySchemes": {
                "key": {"type": "apiKey", "in": "header", "name": "X-Key"},
                "oauth": {
                    "type": "oauth2",
                    "flows": {"clientCredentials": {"tokenUrl": "/t", "scopes": {}}},
                },
                "basic": {"type": "http", "scheme": "Basic"},
            }
        },
    )
    catalog = build(document)
    assert catalog.security == ({"key": ()},)
    assert catalog.operation("inherit").security is None
    assert catalog.operation("none").security == ()
    assert catalog.operation("own").security == ({"oauth": ("read", "write")}, {})
    key = catalog.security_schemes["key"]
    assert (key.type, key.location, key.parameter_name) == ("apiKey", "header", "X-Key")
    assert catalog.security_schemes["basic"].scheme == "basic"
    assert "clientCredentials" in catalog.security_schemes["oauth"].flows


def test_servers_operation_over_path_over_document() -> None:
    document = doc(
        {
            "/doc": {"get": ok("doc")},
            "/path": {
                "servers": [{"url": "/v2"}],
                "get": ok("path"),
                "put": ok("op", servers=[{"url": "https://op"}]),
            },
        },
        servers=[
            {
                "url": "https://{region}.example.com/{base}",
                "variables": {
                    "region": {"default": "eu", "enum": ["eu", "us"]},
                    "base": {"default": "v1", "description": "version"},
                },
            }
        ],
    )
    catalog = build(document)
    (server,) = catalog.servers
    assert server.variables["region"].enum == ("eu", "us")
    assert server.variables["base"].description == "version"
    assert catalog.operation("doc").servers == catalog.servers
    assert [s.url for s in catalog.operation("path").servers] == ["/v2"]
    assert [s.url for s in catalog.operation("op").servers] == ["https://op"]


def test_no_servers_means_slash() -> None:
    assert [s.url for s in build(doc({})).servers] == ["/"]


def test_changes_state_by_method_or_extension() -> None:
    catalog = build(
        doc(
            {
                "/a": {
                    "get": ok("get"),
                    "head": ok("head"),
                    "options": ok("options"),
                    "trace": ok("trace"),
                    "post": ok("post", **{"x-apiq-consequential": False}),
                    "put": ok("put"),
                    "patch": ok("patch"),
                    "delete": ok("delete"),
                },
                "/b": {"get": ok("search", **{"x-apiq-consequential": True})},
            }
        )
    )
    changing = {o.operation_id for o in catalog if o.changes_state}
    assert changing == {"post", "put", "patch", "delete", "search"}


# -- lookups -------------------------------------------------------------------------------


def test_lookups() -> None:
    catalog = build(
        doc(
            {
                "/pets": {"get": ok("list", tags=["pets"])},
                "/pets/{id}": {"get": ok("show", tags=["pets", "one"])},
                "/pets/mine": {"get": ok("mine")},
            }
        )
    )
    assert catalog.find("GET", "/pets/{id}") is catalog.operation("show")
    assert catalog.find("get", "/pets/42") is catalog.operation("show")
    assert catalog.find("get", "/pets/mine") is catalog.operation("mine")
    assert catalog.find("post", "/pets") is None
    assert catalog.find("get", "/pets/42/toys") is None
    assert [o.operation_id for o in catalog.by_tag("pets")] == ["list", "show"]
    assert catalog.by_tag("nope") == ()
    assert catalog.tags() == {"pets": 2, "one": 1}
    assert catalog.get_operation("nope") is None
    with pytest.raises(OperationNotFound) as info:
        catalog.operation("lst")
    assert info.value.operation_id == "lst"
    assert "'list'" in str(info.value)


def test_many_catalogs_live_side_by_side() -> None:
    a = build(doc({"/a": {"get": ok("same")}}), name="a")
    b = build(doc({"/b": {"get": ok("same")}}), name="b")
    assert (a.name, a.operation("same").path) == ("a", "/a")
    assert (b.name, b.operation("same").path) == ("b", "/b")


def test_argument_schemas_are_cached_and_thread_safe() -> None:
    catalog = build(doc({f"/p{i}/{{id}}": {"get": ok(f"op{i}")} for i in range(50)}))
    results: list[dict[str, Any]] = []

    def work() -> None:
        results.extend(catalog.argument_schema(f"op{i}") for i in range(50))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 200
    assert all(results[i] is catalog.argument_schema(f"op{i % 50}") for i in range(200))


# -- bad documents -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"openapi": "2.5", "paths": {}},
        {"openapi": 3, "paths": {}},
        {"openapi": "3.0.0", "paths": []},
    ],
)
def test_documents_that_are_not_openapi_are_invalid(document: Any) -> None:
    with pytest.raises(SpecInvalid):
        build_catalog(document, source="bad.json")


def test_bad_pieces_become_warnings() -> None:
    document = doc(
        {
            "/a": "nope",
            "/b": {
                "get": "nope",
                "post": ok("post", parameters="nope", security="nope", servers=3),
            },
        },
        info="nope",
    )
    catalog = build(document)
    assert [o.operation_id for o in catalog] == ["post"]
    assert catalog.name == "api"
    assert {
        "invalid-path-item",
        "invalid-operation",
        "invalid-parameters",
        "invalid-security",
    } <= set(codes(catalog))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
_SPOTS = (
    "paths",
    "paths./a",
    "paths./a.get",
    "paths./a.get.parameters",
    "paths./a.get.parameters.0",
    "paths./a.get.requestBody",
    "paths./a.get.responses",
    "paths./a.get.security",
    "servers",
    "components",
    "components.parameters",
    "components.securitySchemes",
    "info",
    "paths./a.parameters",
    "paths./a.get.responses.200",
    "paths./a.get.tags",
)


@settings(max_examples=300, deadline=None)
@given(spot=st.sampled_from(_SPOTS), value=json_values)
def test_mutated_documents_raise_nothing_but_apiq_errors(spot: str, value: Any) -> None:
    document = doc(
        {
            "/a": {
                "parameters": [{"$ref": "#/components/parameters/p"}],
                "get": ok(
                    "a",
                    parameters=[{"name": "q", "in": "query", "schema": {"type": "string"}}],
                    requestBody={"content": {"application/json": {"schema": {"type": "object"}}}},
                    security=[{"key": []}],
                    tags=["t"],
                ),
            }
        },
        servers=[{"url": "https://x"}],
        components={
            "parameters": {"p": {"name": "p", "in": "query"}},
            "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "k"}},
        },
    )
    *parents, last = spot.split(".")
    node: Any = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    try:
        catalog = build(document)
        for op in catalog:
            catalog.argument_schema(op.operation_id)
    except ApiqError:
        pass
