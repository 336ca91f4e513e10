"""Arazzo 1.0 import/export: schema-valid output, a realistic import, round trips, refusals."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from apiq.errors import ArazzoInvalid, ConfigurationError
from apiq.workflows.arazzo import (
    ARAZZO_VERSION,
    SCHEMA_ID,
    export_arazzo,
    import_arazzo,
    validate_arazzo,
)
from apiq.workflows.model import (
    Criterion,
    CriterionExpressionType,
    FailureAction,
    ForEach,
    Parameter,
    PayloadReplacement,
    Plan,
    RequestBody,
    SourceDescription,
    Step,
    SuccessAction,
    Workflow,
)

ADOPTION = """\
arazzo: 1.0.1
info:
  title: Petstore - adopt an available pet
  version: 1.0.0
  description: Find an available pet, check it is still for sale, and order it.
sourceDescriptions:
  - name: petstore
    url: https://petstore3.swagger.io/api/v3/openapi.json
    type: openapi
workflows:
  - workflowId: adopt-pet
    summary: Order the first available pet.
    inputs:
      $ref: '#/components/inputs/adoption'
    steps:
      - stepId: find-pets
        description: List the pets that are available.
        operationId: findPetsByStatus
        parameters:
          - reference: $components.parameters.available
        successCriteria:
          - condition: $statusCode == 200
          - context: $response.body
            condition: $[?count(@) > 0]
            type: jsonpath
        onFailure:
          - reference: $components.failureActions.retryWhenBusy
        outputs:
          pet_id: $response.body#/0/id
      - stepId: check-pet
        operationId: $sourceDescriptions.petstore.getPetById
        parameters:
          - name: petId
            in: path
            value: $steps.find-pets.outputs.pet_id
        successCriteria:
          - condition: $statusCode == 200
        onSuccess:
          - name: alreadySold
            type: end
            criteria:
              - context: $response.body#/status
                condition: ^sold$
                type: regex
        outputs:
          status: $response.body#/status
      - stepId: place-order
        operationId: placeOrder
        requestBody:
          contentType: application/json
          payload:
            petId: $steps.find-pets.outputs.pet_id
            quantity: $inputs.quantity
            status: placed
            complete: false
          replacements:
            - target: /shipDate
              value: $inputs.ship_date
        successCriteria:
          - condition: $statusCode == 200
        outputs:
          order_id: $response.body#/id
    outputs:
      order_id: $steps.place-order.outputs.order_id
components:
  inputs:
    adoption:
      type: object
      properties:
        quantity:
          type: integer
        ship_date:
          $ref: '#/components/inputs/date'
    date:
      type: string
      format: date-time
  parameters:
    available:
      name: status
      in: query
      value: available
  failureActions:
    retryWhenBusy:
      name: retryWhenBusy
      type: retry
      retryAfter: 1.5
      retryLimit: 3
      criteria:
        - condition: $statusCode == 503
"""

SOURCE = "https://petstore3.swagger.io/api/v3/openapi.json"


def expected_adoption(connection: str) -> Plan:
    ok = Criterion(condition="$statusCode == 200")
    return Plan(
        workflow=Workflow(
            workflow_id="adopt-pet",
            summary="Order the first available pet.",
            inputs={
                "type": "object",
                "properties": {
                    "quantity": {"type": "integer"},
                    "ship_date": {"type": "string", "format": "date-time"},
                },
            },
            steps=(
                Step(
                    step_id="find-pets",
                    description="List the pets that are available.",
                    operation_id="findPetsByStatus",
                    parameters=(
                        Parameter.model_validate(
                            {"name": "status", "in": "query", "value": "available"}
                        ),
                    ),
                    success_criteria=(
                        ok,
                        Criterion(
                            context="$response.body", condition="$[?count(@) > 0]", type="jsonpath"
                        ),
                    ),
                    on_failure=(
                        FailureAction(
                            name="retryWhenBusy",
                            type="retry",
                            retry_after=1.5,
                            retry_limit=3,
                            criteria=(Criterion(condition="$statusCode == 503"),),
                        ),
                    ),
                    outputs={"pet_id": "$response.body#/0/id"},
                ),
                Step(
                    step_id="check-pet",
                    operation_id=f"$sourceDescriptions.{connection}.getPetById",
                    parameters=(
                        Parameter.model_validate(
                            {
                                "name": "petId",
                                "in": "path",
                                "value": "$steps.find-pets.outputs.pet_id",
                            }
                        ),
                    ),
                    success_criteria=(ok,),
                    on_success=(
                        SuccessAction(
                            name="alreadySold",
                            type="end",
                            criteria=(
                                Criterion(
                                    context="$response.body#/status",
                                    condition="^sold$",
                                    type="regex",
                                ),
                            ),
                        ),
                    ),
                    outputs={"status": "$response.body#/status"},
                ),
                Step(
                    step_id="place-order",
                    operation_id="placeOrder",
                    request_body=RequestBody(
                        content_type="application/json",
                        payload={
                            "petId": "$steps.find-pets.outputs.pet_id",
                            "quantity": "$inputs.quantity",
                            "status": "placed",
                            "complete": False,
                        },
                        replacements=(
                            PayloadReplacement(target="/shipDate", value="$inputs.ship_date"),
                        ),
                    ),
                    success_criteria=(ok,),
                    outputs={"order_id": "$response.body#/id"},
                ),
            ),
            outputs={"order_id": "$steps.place-order.outputs.order_id"},
        ),
        sources=(SourceDescription(name=connection, url=SOURCE),),
    )


def test_realistic_document_becomes_the_expected_plan() -> None:
    (plan,) = import_arazzo(ADOPTION, source="adopt.arazzo.yaml")
    assert plan == expected_adoption("petstore")
    assert plan.request == ""
    assert plan.confidence == 1.0
    assert plan.target(plan.workflow.steps[1]) == ("petstore", "getPetById")


def test_sources_are_renamed_to_connection_ids() -> None:
    (plan,) = import_arazzo(ADOPTION.encode(), connections={"petstore": "petstore-prod"})
    assert plan == expected_adoption("petstore-prod")
    assert plan.target(plan.workflow.steps[1]) == ("petstore-prod", "getPetById")


def test_operation_path_is_kept_with_its_source_renamed() -> None:
    step = {"stepId": "s", "operationPath": "{$sourceDescriptions.petstore.url}#/paths/~1pet/get"}
    (plan,) = import_arazzo(document(steps=[step]), connections={"petstore": "shop"})
    assert (
        plan.workflow.steps[0].operation_path == "{$sourceDescriptions.shop.url}#/paths/~1pet/get"
    )


def test_export_is_valid_arazzo_with_request_and_confidence_kept() -> None:
    plan = expected_adoption("petstore").model_copy(
        update={"request": "adopt a dog\nquickly", "confidence": 0.75}
    )
    doc = export_arazzo(plan, spec_urls={"petstore": "https://specs.test/petstore.json"})
    assert validate_arazzo(doc) == []
    assert doc["arazzo"] == ARAZZO_VERSION
    assert doc["info"] == {
        "title": "Order the first available pet.",
        "version": "1.0.0",
        "description": "adopt a dog\nquickly",
        "x-apiq-request": "adopt a dog\nquickly",
        "x-apiq-confidence": 0.75,
    }
    assert doc["sourceDescriptions"] == [
        {"name": "petstore", "url": "https://specs.test/petstore.json", "type": "openapi"}
    ]
    first = doc["workflows"][0]["steps"][0]
    assert first["successCriteria"][0] == {"condition": "$statusCode == 200"}  # no defaults
    assert "onSuccess" not in first
    assert "description" not in doc["workflows"][0]
    (back,) = import_arazzo(json.dumps(doc))
    assert back == plan.model_copy(
        update={
            "sources": (
                plan.sources[0].model_copy(update={"url": "https://specs.test/petstore.json"}),
            )
        }
    )
    assert export_arazzo(plan, title="Adoption")["info"]["title"] == "Adoption"


def official_validator() -> Draft202012Validator:
    schema = json.loads(files("apiq.data").joinpath("arazzo-1.0.schema.json").read_bytes())
    assert schema["$id"] == SCHEMA_ID
    return Draft202012Validator(schema)


def test_export_passes_the_unpatched_official_schema_too() -> None:
    doc = export_arazzo(expected_adoption("petstore"))
    assert list(official_validator().iter_errors(doc)) == []


def test_spec_text_wins_where_the_official_schema_contradicts_it() -> None:
    # Arazzo 1.0.1: a Criterion's type may be a Criterion Expression Type Object, and a
    # replacement value is Any; the published schema refuses both (upstream issue 336).
    step = {
        "stepId": "s",
        "operationId": "placeOrder",
        "requestBody": {"payload": {}, "replacements": [{"target": "/quantity", "value": 2}]},
        "successCriteria": [
            {
                "context": "$response.body",
                "condition": "$.id",
                "type": {"type": "jsonpath", "version": "draft-goessner-dispatch-jsonpath-00"},
            }
        ],
    }
    doc = document(steps=[step])
    assert len(list(official_validator().iter_errors(doc))) >= 2
    assert validate_arazzo(doc) == []
    (plan,) = import_arazzo(doc)
    criterion = plan.workflow.steps[0].success_criteria[0]
    assert criterion.type == CriterionExpressionType(
        type="jsonpath", version="draft-goessner-dispatch-jsonpath-00"
    )
    assert validate_arazzo(export_arazzo(plan)) == []


# --- round trip ------------------------------------------------------------------------------

identifiers = st.from_regex(r"[A-Za-z0-9_\-]{1,12}", fullmatch=True)
characters = st.characters(exclude_categories=["Cs"])  # lone surrogates are refused on import
texts = st.text(characters, max_size=24)
words = st.text(characters, min_size=1, max_size=24)
expressions = st.sampled_from(
    ["$response.body", "$response.body#/id", "$inputs.petId", "$steps.a.outputs.id", "$statusCode"]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | expressions,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
extensions = st.dictionaries(
    st.from_regex(r"x-[a-z]{1,8}", fullmatch=True).filter(lambda k: not k.startswith("x-apiq")),
    json_values,
    max_size=2,
)
output_names = st.from_regex(r"[A-Za-z0-9.\-_]{1,10}", fullmatch=True)
input_schemas = st.sampled_from(
    [
        {},
        {"type": "object", "properties": {"petId": {"type": "integer"}}, "required": ["petId"]},
        {"type": "object", "properties": {"status": {"enum": ["available", "sold"]}}},
    ]
)


M = TypeVar("M", bound=BaseModel)


def with_extensions(model: type[M], fields: dict[str, Any], extra: dict[str, Any]) -> M:
    return model.model_validate({**fields, **extra})


simple_criteria = st.builds(
    Criterion, condition=words, context=st.none() | expressions, type=st.just("simple")
)
typed_criteria = st.builds(
    Criterion,
    condition=words,
    context=expressions,
    type=st.sampled_from(["regex", "jsonpath", "xpath"])
    | st.builds(
        CriterionExpressionType,
        type=st.just("jsonpath"),
        version=st.just("draft-goessner-dispatch-jsonpath-00"),
    )
    | st.builds(
        CriterionExpressionType,
        type=st.just("xpath"),
        version=st.sampled_from(["xpath-10", "xpath-20", "xpath-30"]),
    ),
)
criteria = simple_criteria | typed_criteria
criterion_lists = st.lists(criteria, max_size=3, unique_by=lambda c: c.condition).map(tuple)


@st.composite
def success_actions(draw: st.DrawFn) -> SuccessAction:
    kind = draw(st.sampled_from(["end", "goto"]))
    target = draw(st.sampled_from(["stepId", "workflowId"])) if kind == "goto" else None
    fields = {"name": draw(words), "type": kind, "criteria": draw(criterion_lists)}
    if target:
        fields[target] = draw(identifiers)
    return with_extensions(SuccessAction, fields, draw(extensions))


@st.composite
def failure_actions(draw: st.DrawFn) -> FailureAction:
    kind = draw(st.sampled_from(["end", "goto", "retry"]))
    fields: dict[str, Any] = {"name": draw(words), "type": kind, "criteria": draw(criterion_lists)}
    if kind == "goto":
        fields[draw(st.sampled_from(["stepId", "workflowId"]))] = draw(identifiers)
    if kind == "retry":
        fields["retryAfter"] = draw(st.none() | st.floats(0, 3600))
        fields["retryLimit"] = draw(st.none() | st.integers(0, 10))
    return with_extensions(FailureAction, fields, draw(extensions))


def parameters(places: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Parameter, ...]]:
    one = st.builds(
        lambda name, place, value, extra: with_extensions(
            Parameter, {"name": name, "in": place, "value": value}, extra
        ),
        words,
        places,
        json_values,
        extensions,
    )
    return st.lists(one, max_size=3, unique_by=lambda p: p.name).map(tuple)


request_bodies = st.builds(
    RequestBody,
    content_type=st.none() | st.sampled_from(["application/json", "text/plain"]),
    payload=json_values,
    replacements=st.lists(
        st.builds(
            PayloadReplacement,
            target=st.from_regex(r"(/[a-z0-9]{1,5}){1,3}", fullmatch=True),
            value=json_values,
        ),
        max_size=2,
        unique_by=lambda r: r.target,
    ).map(tuple),
)
places = st.sampled_from(["path", "query", "header", "cookie"])


@st.composite
def steps(draw: st.DrawFn, step_id: str, sources: list[str]) -> Step:
    source = draw(st.sampled_from(sources))
    target = draw(
        st.sampled_from(
            [
                ("operationId", "findPetsByStatus"),
                ("operationId", f"$sourceDescriptions.{source}.getPetById"),
                ("operationPath", f"{{$sourceDescriptions.{source}.url}}#/paths/~1pet/get"),
            ]
        )
    )
    fields: dict[str, Any] = {
        "stepId": step_id,
        "description": draw(texts),
        target[0]: target[1],
        "parameters": draw(parameters(places)),
        "requestBody": draw(st.none() | request_bodies),
        "successCriteria": draw(criterion_lists),
        "onSuccess": draw(st.lists(success_actions(), max_size=2, unique_by=lambda a: a.name)),
        "onFailure": draw(st.lists(failure_actions(), max_size=2, unique_by=lambda a: a.name)),
        "outputs": draw(st.dictionaries(output_names, expressions, max_size=3)),
        "x-apiq-forEach": draw(
            st.none() | st.builds(ForEach, items=expressions, max_items=st.integers(1, 1000))
        ),
        "x-apiq-if": draw(st.none() | criteria),
        "x-apiq-else": draw(st.lists(success_actions(), max_size=2, unique_by=lambda a: a.name)),
        "x-apiq-transform": draw(st.dictionaries(output_names, json_values, max_size=2)),
    }
    return with_extensions(Step, fields, draw(extensions))


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    names = draw(st.lists(identifiers, min_size=1, max_size=3, unique=True))
    step_ids = draw(st.lists(identifiers, min_size=1, max_size=4, unique=True))
    workflow = {
        "workflowId": draw(identifiers),
        "summary": draw(texts),
        "description": draw(texts),
        "inputs": draw(input_schemas),
        "steps": [draw(steps(step_id, names)) for step_id in step_ids],
        "successActions": draw(st.lists(success_actions(), max_size=2, unique_by=lambda a: a.name)),
        "failureActions": draw(st.lists(failure_actions(), max_size=2, unique_by=lambda a: a.name)),
        "outputs": draw(st.dictionaries(output_names, expressions, max_size=2)),
        "parameters": draw(parameters(st.none() | places)),
    }
    sources = [
        with_extensions(
            SourceDescription, {"name": n, "url": f"https://specs.test/{n}.json"}, draw(extensions)
        )
        for n in names
    ]
    plan = {
        "workflow": with_extensions(Workflow, workflow, draw(extensions)),
        "sources": sources,
        "request": draw(texts),
        "confidence": draw(st.floats(0, 1)),
    }
    return with_extensions(Plan, plan, draw(extensions))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_export_then_import_gives_the_same_plan(plan: Plan) -> None:
    doc = export_arazzo(plan)
    assert validate_arazzo(doc) == []
    (back,) = import_arazzo(json.dumps(doc, ensure_ascii=False))
    assert back == plan
    assert back.digest() == plan.digest()


# --- refusals --------------------------------------------------------------------------------


def document(steps: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "arazzo": "1.0.1",
        "info": {"title": "t", "version": "1"},
        "sourceDescriptions": [{"name": "petstore", "url": SOURCE, "type": "openapi"}],
        "workflows": [
            {
                "workflowId": "w",
                "steps": steps or [{"stepId": "s", "operationId": "findPetsByStatus"}],
            }
        ],
    }
    return doc | fields


def refused(content: Any, *fragments: str, **kwargs: Any) -> ArazzoInvalid:
    with pytest.raises(ArazzoInvalid) as info:
        import_arazzo(content, source="doc.arazzo", **kwargs)
    error = info.value
    assert error.source == "doc.arazzo"
    for fragment in fragments:
        assert fragment in str(error)
    return error


def alias_bomb(levels: int = 9, fan: int = 9) -> bytes:
    lines = ["arazzo: 1.0.1", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels + 1)]
    return "\n".join(lines).encode() + b"\n"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (json.dumps({"openapi": "3.0.3", "info": {}, "paths": {}}), "an OpenAPI document"),
        ("title: something else\n", "no 'arazzo' field"),
        ("[1, 2]", "the top level is a list"),
        ("", "empty"),
        ({"arazzo": {1, 2}}, "not JSON data"),
        (alias_bomb(), "aliases expanded"),
        (b"arazzo: 1.0.1\nx: !!python/object/apply:os.system ['true']\n", "python/object"),
        (b'{"arazzo": "1.0.1", "arazzo": "1.0.0"}', "duplicate key"),
        (b'{"arazzo": "1.0.1", "x": ' + b"[" * 500 + b"]" * 500 + b"}", "deeper than 200"),
        (b"\xff\xfe\x00", "UTF-16"),
    ],
)
def test_unreadable_or_foreign_documents_are_refused(content: Any, fragment: str) -> None:
    refused(content, fragment, "doc.arazzo")


@pytest.mark.parametrize("version", ["1.1.0", "2.0.0", "1.0", 1.0])
def test_other_arazzo_versions_are_refused(version: Any) -> None:
    error = refused(document(arazzo=version), "unsupported arazzo version", "1.0.x")
    assert error.path == "$.arazzo"


def test_huge_documents_are_refused_by_size_before_parsing() -> None:
    big = document(info={"title": "t", "version": "1", "description": "x" * (1024 * 1024)})
    refused(json.dumps(big), "more than the 1,048,576 allowed")
    refused(big, "more than the 1,048,576 allowed")


def test_schema_violations_name_their_json_path() -> None:
    step = {
        "stepId": "s",
        "operationId": "getPetById",
        "parameters": [{"name": "petId", "value": 1}],
    }
    error = refused(document(steps=[step]), "does not match the Arazzo 1.0 schema")
    assert error.path == "$.workflows[0].steps[0].parameters[0]"
    assert error.errors == ("$.workflows[0].steps[0].parameters[0]: 'in' is a required property",)
    no_title = refused(document(info={"version": "1"}))
    assert no_title.errors == ("$.info: 'title' is a required property",)
    typo = refused(document(steps=[{"stepId": "s", "operationId": "o", "sucessCriteria": []}]))
    assert typo.path == "$.workflows[0].steps[0]"
    assert "'sucessCriteria' was unexpected" in str(typo)


def test_unknown_source_names_are_refused() -> None:
    step = {"stepId": "s", "operationId": "$sourceDescriptions.shop.getPetById"}
    error = refused(document(steps=[step]), "names no source (petstore)")
    assert error.path == "$.workflows[0].steps[0].operationId"
    path_step = {"stepId": "s", "operationPath": "{$sourceDescriptions.shop.url}#/paths/~1pet/get"}
    assert refused(document(steps=[path_step])).path == "$.workflows[0].steps[0].operationPath"
    with pytest.raises(ConfigurationError, match="connections names source"):
        import_arazzo(document(), connections={"shop": "petstore"})


@pytest.mark.parametrize(
    ("change", "fragment", "path"),
    [
        (
            {"sourceDescriptions": [{"name": "petstore", "url": "x.yaml", "type": "arazzo"}]},
            "is an Arazzo document",
            "$.sourceDescriptions[0].type",
        ),
        (
            {"workflows": [{"workflowId": "w", "steps": [{"stepId": "s", "workflowId": "other"}]}]},
            "runs workflow 'other'",
            "$.workflows[0].steps[0].workflowId",
        ),
        (
            {
                "workflows": [
                    {
                        "workflowId": "w",
                        "dependsOn": ["v"],
                        "steps": [{"stepId": "s", "operationId": "o"}],
                    }
                ]
            },
            "not the ones it depends on",
            "$.workflows[0].dependsOn",
        ),
        (
            {
                "workflows": [
                    {
                        "workflowId": "w",
                        "parameters": [{"reference": "$components.parameters.missing"}],
                        "steps": [{"stepId": "s", "operationId": "o"}],
                    }
                ]
            },
            "names no parameters component",
            "$.workflows[0].parameters[0]",
        ),
        (
            {
                "workflows": [
                    {
                        "workflowId": "w",
                        "inputs": {"$ref": "#/components/inputs/a"},
                        "steps": [{"stepId": "s", "operationId": "o"}],
                    }
                ],
                "components": {
                    "inputs": {
                        "a": {"$ref": "#/components/inputs/b"},
                        "b": {"$ref": "#/components/inputs/a"},
                    }
                },
            },
            "refers to itself",
            "$.workflows[0].inputs",
        ),
        (
            {"info": {"title": "t", "version": "1", "x-apiq-confidence": 2}},
            "less than or equal to 1",
            "$.info['x-apiq-confidence']",
        ),
    ],
)
def test_what_a_plan_cannot_hold_is_refused(
    change: dict[str, Any], fragment: str, path: str
) -> None:
    assert refused(document(**change), fragment).path == path


def test_input_reference_bombs_stop_at_the_node_budget() -> None:
    layers: dict[str, Any] = {
        f"l{i}": {"allOf": [{"$ref": f"#/components/inputs/l{i + 1}"}] * 4} for i in range(20)
    }
    layers["l20"] = {"type": "string"}
    change: dict[str, Any] = {
        "workflows": [
            {
                "workflowId": "w",
                "inputs": {"$ref": "#/components/inputs/l0"},
                "steps": [{"stepId": "s", "operationId": "o"}],
            }
        ],
        "components": {"inputs": layers},
    }
    refused(document(**change), "grows past 100,000 nodes")


def test_export_refuses_what_arazzo_cannot_express() -> None:
    step = Step(
        step_id="s", operation_id="getPetById", parameters=(Parameter(name="petId", value=1),)
    )
    plan = Plan(
        workflow=Workflow(workflow_id="w", steps=(step,)),
        sources=(SourceDescription(name="petstore", url=SOURCE),),
    )
    with pytest.raises(ArazzoInvalid, match="'in' is a required property") as info:
        export_arazzo(plan)
    assert info.value.path == "$.workflows[0].steps[0].parameters[0]"
    with pytest.raises(ConfigurationError, match="spec_urls names source"):
        export_arazzo(plan, spec_urls={"shop": "https://specs.test/shop.json"})
