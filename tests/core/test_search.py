"""Operation search (apiq.search): ranking behaviour, tokenizer, scoping, hostile queries."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiq.catalog import Catalog, build_catalog
from apiq.errors import ConfigurationError
from apiq.search import MAX_QUERY_CHARS, CatalogView, OperationIndex, SearchHit
from apiq.search.query import split_steps
from apiq.search.tokenize import search_terms, split_words, stem
from apiq.specs.parse import parse_spec
from apiq.testing.petstore import petstore_spec


def bookstore_spec() -> dict[str, Any]:
    """A second, unrelated API: books and authors."""

    def op(op_id: str, summary: str, **extra: Any) -> dict[str, Any]:
        return {"operationId": op_id, "summary": summary, "responses": {"200": {}}, **extra}

    author = {"name": "author", "in": "query", "schema": {"type": "string"}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Bookstore", "version": "1"},
        "paths": {
            "/books": {
                "get": op("listBooks", "List books", parameters=[author]),
                "post": op("createBook", "Add a book"),
            },
            "/books/{bookId}": {
                "parameters": [{"name": "bookId", "in": "path", "required": True, "schema": {}}],
                "get": op("getBook", "Get a book"),
                "delete": op("deleteBook", "Delete a book"),
            },
            "/authors": {"get": op("listAuthors", "List authors")},
        },
    }


@pytest.fixture(scope="module")
def pets() -> Catalog:
    return build_catalog(petstore_spec(), source="petstore-oas30.json")


@pytest.fixture(scope="module")
def books() -> Catalog:
    return build_catalog(bookstore_spec(), source="bookstore.json")


@pytest.fixture(scope="module")
def index(pets: Catalog, books: Catalog) -> OperationIndex:
    built = OperationIndex()
    built.add("pets", pets)
    built.add("books", books)
    return built


def top(hits: list[SearchHit], n: int = 1) -> list[str]:
    return [hit.operation_id for hit in hits[:n]]


# --- ranking on the Petstore ------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("find pets by status", "findPetsByStatus"),
        ("which pets are pending", "findPetsByStatus"),
        ("show the pets tagged cute", "findPetsByTags"),
        ("add a new pet to the store", "addPet"),
        ("look up pet 42", "getPetById"),
        ("remove pet 7", "deletePet"),
        ("cancel order 5", "deleteOrder"),
        ("place an order for a pet", "placeOrder"),
        ("log in as alice", "loginUser"),
        ("upload an image of my dog", "uploadFile"),
        ("what is in the store inventory", "getInventory"),
    ],
)
def test_petstore_request_finds_its_operation_first(
    index: OperationIndex, request_text: str, expected: str
) -> None:
    assert top(index.search(request_text, sources=["pets"])) == [expected]


@pytest.mark.parametrize(
    ("request_text", "method"),
    [
        ("add a pet", "post"),
        ("create a user", "post"),
        ("delete the user", "delete"),
        ("remove the order", "delete"),
        ("change the user", "put"),
        ("get the order", "get"),
    ],
)
def test_the_verb_picks_the_method(index: OperationIndex, request_text: str, method: str) -> None:
    assert index.search(request_text, sources=["pets"])[0].operation.method == method


def test_a_multi_step_request_finds_every_step(index: OperationIndex) -> None:
    hits = index.search("find the available pets and order the first one", k=3, sources=["pets"])
    assert {"findPetsByStatus", "placeOrder"} <= set(top(hits, 3))


def test_steps_split_at_then_and_at_a_verb_after_and() -> None:
    assert len(split_steps("look up pet 10, then delete it")) == 2
    assert len(split_steps("find the available pets and order the first one")) == 2
    assert len(split_steps("list pets and their owners")) == 1


def test_hits_carry_the_operation_and_fall_in_score(index: OperationIndex, pets: Catalog) -> None:
    hits = index.search("find pets by status", k=5, sources=["pets"])
    assert len(hits) == 5
    for hit in hits:
        assert hit.source == "pets"
        assert hit.operation is pets.operation(hit.operation_id)
        assert hit.score > 0
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_finds_nothing(index: OperationIndex, k: int) -> None:
    assert index.search("find pets", k=k) == []


# --- scoping and many catalogs ----------------------------------------------------------


def test_each_request_finds_its_own_api(index: OperationIndex) -> None:
    assert index.search("list books by an author")[0].source == "books"
    assert index.search("place an order for a pet")[0].source == "pets"


def test_sources_restrict_the_search(index: OperationIndex) -> None:
    hits = index.search("delete the pet", sources=["books"])
    assert top(hits) == ["deleteBook"]
    assert {hit.source for hit in hits} == {"books"}
    # Nothing the request says is in the books API: no guess from the verb alone.
    assert index.search("find pets by status", sources=["books"]) == []
    assert index.search("find pets by status", sources=[]) == []
    assert index.search("find pets by status", sources=["unknown"]) == []


def test_a_view_never_returns_another_sources_operations(index: OperationIndex) -> None:
    view = index.view(["books"])
    assert isinstance(view, CatalogView)
    assert view.sources == ("books",)
    for text in ("find pets by status", "place an order for a pet", "delete the user"):
        assert {hit.source for hit in view.search(text)} <= {"books"}
    assert view.operation("pets", "findPetsByStatus") is None


def test_a_view_of_named_sources_reports_their_catalogs(
    index: OperationIndex, pets: Catalog, books: Catalog
) -> None:
    view = index.view(["pets", "books"])
    assert dict(view.catalogs) == {"pets": pets, "books": books}
    assert view.operation("books", "getBook") is books.operation("getBook")
    assert len(list(view.operations())) == len(pets) + len(books)


def test_a_view_of_unknown_names_is_a_configuration_error(index: OperationIndex) -> None:
    with pytest.raises(ConfigurationError, match="nope"):
        index.view(["nope"])


def test_a_view_of_a_mapping_searches_exactly_those_catalogs(
    index: OperationIndex, books: Catalog
) -> None:
    other_books = build_catalog(bookstore_spec(), source="other.json")
    view = index.view({"pets": other_books})  # "pets" names another catalog here
    assert view.catalogs["pets"] is other_books
    hits = view.search("find pets by status")
    assert all(hit.operation is other_books.operation(hit.operation_id) for hit in hits)
    assert top(index.view({"library": books}).search("delete a book")) == ["deleteBook"]


def test_a_view_keeps_its_sources_when_the_index_changes(pets: Catalog, books: Catalog) -> None:
    index = OperationIndex()
    index.add("pets", pets)
    view = index.view(["pets"])
    index.remove("pets")
    index.add("books", books)
    assert "pets" not in index
    assert index.search("find pets by status", sources=["pets"]) == []
    assert top(view.search("find pets by status")) == ["findPetsByStatus"]


def test_add_replaces_and_remove_forgets(pets: Catalog, books: Catalog) -> None:
    index = OperationIndex()
    index.add("api", pets)
    index.add("api", books)
    assert index.sources == ("api",)
    assert index.catalog("api") is books
    assert top(index.search("delete a book")) == ["deleteBook"]
    index.remove("api")
    index.remove("api")  # no error the second time
    assert index.search("delete a book") == []
    assert len(index) == 0


def test_an_empty_catalog_finds_nothing() -> None:
    empty = build_catalog(
        {"openapi": "3.0.3", "info": {"title": "Empty", "version": "1"}, "paths": {}},
        source="empty.json",
    )
    index = OperationIndex()
    index.add("empty", empty)
    assert index.search("list everything") == []


# --- hostile and odd queries ------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "   ", "!!!", "\x00\x01\x02", "the of and a to", "zzqxv qqq", "🐶🐱", "'\"`"]
)
def test_empty_or_garbage_queries_find_nothing(index: OperationIndex, text: str) -> None:
    assert index.search(text) == []


def test_a_huge_query_is_cut(index: OperationIndex) -> None:
    head = "find pets by status " * (MAX_QUERY_CHARS // 20)
    huge = head[:MAX_QUERY_CHARS] + "delete the user " * 100_000
    assert top(index.search(huge, k=5), 5) == top(index.search(huge[:MAX_QUERY_CHARS], k=5), 5)
    assert "deleteUser" not in top(index.search(huge, k=3), 3)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_searches_without_error(text: str) -> None:
    index = _shared_index()
    hits = index.search(text, k=4)
    assert len(hits) <= 4
    for hit in hits:
        assert index.catalog(hit.source) is not None
        assert hit.operation.operation_id == hit.operation_id


_INDEX: list[OperationIndex] = []


def _shared_index() -> OperationIndex:
    # Hypothesis runs a test function many times; it cannot take a pytest fixture.
    if not _INDEX:
        built = OperationIndex()
        built.add("pets", build_catalog(petstore_spec(), source="petstore-oas30.json"))
        built.add("books", build_catalog(bookstore_spec(), source="bookstore.json"))
        _INDEX.append(built)
    return _INDEX[0]


# --- tokenizer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("getPetById", ["get", "pet", "by", "id"]),
        ("findPetsByStatus", ["find", "pets", "by", "status"]),
        ("issues/list-for-repo", ["issues", "list", "for", "repo"]),
        ("snake_case_name", ["snake", "case", "name"]),
        ("HTTPServer", ["http", "server"]),
        ("IDs and URLs", ["ids", "and", "urls"]),
        ("/repos/{owner}/{repo}/issues", ["repos", "owner", "repo", "issues"]),
        ("chat.postMessage", ["chat", "post", "message"]),
        ("/Accounts/{AccountSid}/Calls.json", ["accounts", "account", "sid", "calls", "json"]),
        ("<p>Returns a <code>list</code></p>", ["returns", "a", "list"]),
        ("v1beta2", ["v", "1", "beta", "2"]),
    ],
)
def test_split_words_splits_identifiers(text: str, words: list[str]) -> None:
    assert split_words(text) == words


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("repositories", "repository"),
        ("caches", "cache"),
        ("pets", "pet"),
        ("branches", "branch"),
        ("starred", "star"),
        ("created", "create"),
        ("listing", "list"),
        ("keys", "key"),
        ("statuses", "status"),
        ("people", "person"),
        ("aliases", "alias"),
    ],
)
def test_stem_folds_inflections(one: str, other: str) -> None:
    assert stem(one) == stem(other)


def test_search_terms_expand_abbreviations_and_drop_stop_words() -> None:
    assert search_terms("the repo of an org") == ["repository", "organization"]
    assert search_terms("open a PR") == ["open", "pull", "request"]


@given(st.text(max_size=200))
def test_split_words_never_raises_and_is_lower_case_and_idempotent(text: str) -> None:
    words = split_words(text)
    assert all(word and word == word.lower() for word in words)
    assert split_words(" ".join(words)) == words


@given(st.text(max_size=200))
def test_search_terms_never_raise(text: str) -> None:
    terms = search_terms(text)
    assert all(isinstance(term, str) and term for term in terms)


@given(st.lists(st.sampled_from(["get", "pet", "by", "id", "list", "for", "repo"]), min_size=1))
def test_camel_and_snake_spellings_split_alike(parts: list[str]) -> None:
    camel = parts[0] + "".join(part.capitalize() for part in parts[1:])
    assert split_words(camel) == split_words("_".join(parts)) == parts


# --- the shared spec corpus -------------------------------------------------------------


@pytest.mark.shared
def test_github_and_stripe_together(shared_specs: Path) -> None:
    github = parse_spec(
        gzip.decompress((shared_specs / "github-api.github.com.json.gz").read_bytes()),
        source="github-api.github.com.json.gz",
    )
    stripe = parse_spec((shared_specs / "stripe.json").read_bytes(), source="stripe.json")
    index = OperationIndex()
    index.add("github", github)
    index.add("stripe", stripe)
    assert top(index.search("create a customer with email jane@example.com")) == ["PostCustomers"]
    hit = index.search("open a pull request from my feature branch")[0]
    assert (hit.source, hit.operation_id) == ("github", "pulls/create")
    assert {hit.source for hit in index.view(["stripe"]).search("list the issues of a repo")} == {
        "stripe"
    }
