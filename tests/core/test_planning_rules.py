"""The offline planner's rules one by one: splitting, values in text, filling, chaining."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiq.catalog import Catalog, build_catalog
from apiq.planning.chain import Earlier, find_link
from apiq.planning.fill import fill_from_text
from apiq.planning.shapes import response_shape, slots_of
from apiq.planning.split import Clause, split_request
from apiq.planning.values import mentions
from apiq.planning.words import identifier_words, matches, singular
from apiq.testing.petstore import petstore_spec


@pytest.fixture(scope="module")
def pets() -> Catalog:
    return build_catalog(petstore_spec(), source="petstore.json", name="petstore")


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


_STRING = {"type": "string"}
_REPO = _object(
    id={"type": "integer"}, name=_STRING, owner=_object(login=_STRING, id={"type": "integer"})
)
CODE_HOST: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "code host", "version": "1"},
    "paths": {
        "/search/repositories": {
            "get": {
                "operationId": "searchRepositories",
                "parameters": [{"name": "q", "in": "query", "required": True, "schema": _STRING}],
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": _object(
                                    total_count={"type": "integer"},
                                    items={
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/repository"},
                                    },
                                )
                            }
                        },
                    }
                },
            }
        },
        "/repos/{owner}/{repo}/issues": {
            "get": {
                "operationId": "listIssues",
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": _STRING}
                    for name in ("owner", "repo")
                ],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/customers/{customer}/invoices": {
            "post": {
                "operationId": "createInvoice",
                "parameters": [
                    {"name": "customer", "in": "path", "required": True, "schema": _STRING}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                **_object(subscription=_STRING, description=_STRING),
                                "required": ["subscription"],
                            }
                        }
                    },
                },
                "responses": {"200": {"description": "ok"}},
            }
        },
    },
    "components": {"schemas": {"repository": _REPO}},
}
CHAT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "chat", "version": "1"},
    "paths": {
        f"/{name}": {
            "post": {
                "operationId": name,
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                **_object(channel=_STRING, **{field: _STRING}),
                                "required": ["channel", field],
                            }
                        }
                    }
                },
                "responses": {"200": {"description": "ok"}},
            }
        }
        for name, field in (("postMessage", "text"), ("setTopic", "topic"))
    },
}


@pytest.fixture(scope="module")
def chat() -> Catalog:
    return build_catalog(CHAT, source="chat.json", name="chat")


@pytest.fixture(scope="module")
def code_host() -> Catalog:
    return build_catalog(CODE_HOST, source="code.json", name="code")


# --- splitting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "texts"),
    [
        ("find pets and then delete them", ["find pets", "delete them"]),
        ("get pet 1; get pet 2. Get pet 3", ["get pet 1", "get pet 2", "Get pet 3"]),
        ("look up pet 10, then delete it", ["look up pet 10", "delete it"]),
        (
            "add an item, create an invoice, and finalize it",
            ["add an item", "create an invoice", "finalize it"],
        ),
        ("invite U1 and U2 to channel C9", ["invite U1 and U2 to channel C9"]),
        ("post 'build and then deploy' in #ops", ["post 'build and then deploy' in #ops"]),
        ("find X and after that, list Y", ["find X", "list Y"]),
    ],
)
def test_requests_split_at_connectors_but_never_inside_quotes(
    request_text: str, texts: list[str]
) -> None:
    assert [clause.text for clause in split_request(request_text)] == texts


def test_a_split_before_a_verb_after_and_is_only_tentative() -> None:
    clauses = split_request("close dispute dp_1 and accept the loss, then list disputes")
    assert [(c.text, c.tentative) for c in clauses] == [
        ("close dispute dp_1", False),
        ("accept the loss", True),
        ("list disputes", False),
    ]


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        (
            "find sold pets and get the details of each",
            [("find sold pets", False), ("get the details of each", True)],
        ),
        (
            "for each sold pet, get its details",
            [("list sold pet", False), ("get its details", True)],
        ),
        (
            "get the details of every sold pet",
            [("list sold pet", False), ("get the details", True)],
        ),
        (
            "find pets, then for each pet get its name",
            [("find pets", False), ("get its name pet", True)],
        ),
        ("list every repository in acme", [("list every repository in acme", False)]),
        ("delete every sold pet", [("list sold pet", False), ("delete each sold pet", True)]),
    ],
)
def test_each_and_every_make_a_step_run_per_item(
    request_text: str, expected: list[tuple[str, bool]]
) -> None:
    assert [(c.text, c.each) for c in split_request(request_text)] == expected


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("get pet 5 and if it is sold, delete it", Clause("delete it", condition="it is sold")),
        ("get pet 5, then delete it if it is sold", Clause("delete it", condition="it is sold")),
        ("get pet 5. If it is sold then delete it", Clause("delete it", condition="it is sold")),
    ],
)
def test_if_becomes_the_condition_of_the_clause_it_guards(
    request_text: str, expected: Clause
) -> None:
    last = split_request(request_text)[-1]
    assert (last.text, last.condition) == (expected.text, expected.condition)


@given(st.text(max_size=300))
def test_splitting_never_fails_and_keeps_quoted_text_whole(text: str) -> None:
    quoted = f"{text} then post 'a, and then b' here"
    clauses = split_request(quoted)
    assert all(clause.text.strip() for clause in clauses)
    assert any("'a, and then b'" in clause.text for clause in clauses)


# --- values in text ------------------------------------------------------------------------


def test_values_are_read_by_their_form() -> None:
    found = [
        (m.kind, m.text)
        for m in mentions(
            "mail bob@x.com at https://x.test/a?b=1, call +15551234567 on 2024-05-01 about "
            "'big deal' #12 in acme/api for cus_42 and $20 or 3.5"
        )
        if m.kind != "word"
    ]
    assert found == [
        ("email", "bob@x.com"),
        ("url", "https://x.test/a?b=1"),
        ("phone", "+15551234567"),
        ("date", "2024-05-01"),
        ("quoted", "big deal"),
        ("hash", "#12"),
        ("pair", "acme/api"),
        ("id", "cus_42"),
        ("money", "$20"),
        ("number", "3.5"),
    ]
    assert [m.kind for m in mentions("at 3pm or 9:30 am")] == ["word", "time", "word", "time"]


@given(st.text(max_size=200))
def test_reading_values_never_fails(text: str) -> None:
    for mention in mentions(text):
        assert mention.text == mention.text.strip() or mention.kind == "quoted"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("petId", ["pet", "id"]),
        ("per_page", ["per", "page"]),
        ("list-for-repo", ["list", "for", "repo"]),
        ("HTTPServer", ["http", "server"]),
        ("AccountSid", ["account", "sid"]),
    ],
)
def test_identifiers_break_into_words(name: str, words: list[str]) -> None:
    assert identifier_words(name) == words


def test_words_match_by_singular_abbreviation_or_stem() -> None:
    assert singular("repositories") == "repository"
    assert singular("status") == "status"
    assert matches("repos", "repository")
    assert matches("subscribe", "subscription")
    assert not matches("org", "organization")
    assert matches("org", "organization", min_prefix=3)
    assert not matches("comment", "commit")


# --- filling -------------------------------------------------------------------------------


def filled(catalog: Catalog, operation_id: str, text: str, verb: str | None = None) -> Any:
    operation = catalog.operation(operation_id)
    slots, _ = slots_of(catalog, operation)
    return {
        slot.name: value.value
        for slot, value in fill_from_text(text, slots, operation, verb=verb).items()
    }


@pytest.mark.parametrize(
    ("operation_id", "text", "expected"),
    [
        ("findPetsByStatus", "show pending or sold pets", {"status": ["pending", "sold"]}),
        ("getPetById", "look up pet number 7", {"petId": 7}),
        ("getPetById", "look up pet 'seven'", {}),  # not an integer
        ("getOrderById", "check order 33", {}),  # beyond the schema's maximum of 10
        (
            "loginUser",
            "log in as user 'bob' with password 'secret'",
            {"username": "bob", "password": "secret"},
        ),
        ("updatePetWithForm", 'rename pet 3 to "Fluffy"', {"petId": 3, "name": "Fluffy"}),
        ("addPet", "add a dog called Rex", {"name": "Rex"}),
    ],
)
def test_values_go_to_the_slot_the_text_names(
    pets: Catalog, operation_id: str, text: str, expected: dict[str, Any]
) -> None:
    verb = text.split()[0]
    assert filled(pets, operation_id, text, verb) == expected


def test_an_enum_value_can_come_from_the_verb(pets: Catalog) -> None:
    spec = petstore_spec()
    body = spec["paths"]["/pet/{petId}"]["post"]["requestBody"]["content"]
    form = body["application/x-www-form-urlencoded"]["schema"]["properties"]["status"]
    form["enum"] = ["open", "closed"]
    catalog = build_catalog(spec, source="s.json")
    assert filled(catalog, "updatePetWithForm", "close pet 4", "close")["status"] == "closed"


def test_owner_repo_fill_two_path_parameters(code_host: Catalog) -> None:
    assert filled(code_host, "listIssues", "list issues of octocat/Hello-World") == {
        "owner": "octocat",
        "repo": "Hello-World",
    }


def test_a_prefixed_id_goes_to_the_slot_its_prefix_abbreviates(code_host: Catalog) -> None:
    # sub_1 is written first, but cus_ abbreviates the customer slot, not the subscription
    text = "bill sub_1 to cus_2"
    assert filled(code_host, "createInvoice", text) == {
        "customer": "cus_2",
        "subscription": "sub_1",
    }


def test_quoted_text_is_said_and_a_hashed_name_identifies(chat: Catalog) -> None:
    assert filled(chat, "postMessage", "post 'Deploy done' in #general") == {
        "channel": "#general",
        "text": "Deploy done",
    }


def test_set_a_named_slot_of_something_to_a_value(chat: Catalog) -> None:
    text = "set the topic of #general to 'Planning'"
    assert filled(chat, "setTopic", text, "set") == {"channel": "#general", "topic": "Planning"}


def test_a_search_slot_takes_the_words_that_do_not_name_the_operation(
    code_host: Catalog,
) -> None:
    assert filled(
        code_host, "searchRepositories", "search repositories about machine learning"
    ) == {"q": "machine learning"}


# --- chaining ------------------------------------------------------------------------------


def earlier(catalog: Catalog, operation_id: str) -> Earlier:
    operation = catalog.operation(operation_id)
    return Earlier("s1", operation, catalog, response_shape(catalog, operation))


def test_a_list_of_items_gives_their_id_to_a_slot_named_for_the_item(pets: Catalog) -> None:
    found = earlier(pets, "findPetsByStatus")
    assert found.shape is not None
    assert (found.shape.list_pointer, found.shape.nouns) == ("", frozenset({"pet"}))
    slots, _ = slots_of(pets, pets.operation("getPetById"))
    link = find_link(slots[0], pets.operation("getPetById"), frozenset(), [found])
    assert link is not None
    assert (link.step_id, link.list_pointer, link.field_pointer) == ("s1", "", "/id")
    assert link.output_name == "first_id"


def test_a_bare_id_of_another_thing_is_never_taken(pets: Catalog) -> None:
    order = pets.operation("placeOrder")
    slots, _ = slots_of(pets, order)
    by_name = {slot.name: slot for slot in slots}
    found = [earlier(pets, "getPetById")]
    nouns = frozenset({"order"})
    assert find_link(by_name["id"], order, nouns, found) is None
    link = find_link(by_name["petId"], order, nouns, found)
    assert link is not None
    assert (link.list_pointer, link.field_pointer) == (None, "/id")
    assert find_link(by_name["quantity"], order, nouns, found) is None


def test_an_object_field_gives_its_handle_and_a_name_beats_a_numeric_id(
    code_host: Catalog,
) -> None:
    found = earlier(code_host, "searchRepositories")
    assert found.shape is not None
    assert found.shape.list_pointer == "/items"
    issues = code_host.operation("listIssues")
    slots, _ = slots_of(code_host, issues)
    links = {slot.name: find_link(slot, issues, frozenset(), [found]) for slot in slots}
    assert {name: link and link.field_pointer for name, link in links.items()} == {
        "owner": "/owner/login",
        "repo": "/name",
    }
