"""`OfflinePlanner`: plans with search and rules, no network, no language model.

For each clause of the request (`apiq.planning.split`) it searches the view with the
clause's words (values left out), then re-ranks the best hits (`rank`) by how well each
operation can actually be called: values for its slots from the text (`fill`), reused from
an earlier step, or linked to an earlier response (`chain`). An operation must be about
something the clause names beyond its verb, or be reached through the clause's reference
to an earlier step (`it`, `them`, `each`). A clause split off at a weak boundary that finds
nothing of its own, or the same operation again, is folded back into the clause before it.

It never invents a step: a clause it cannot place raises `PlanningError` with the closest
operations as suggestions, and the plan it returns has passed `check_plan`. Required
values it cannot find become workflow inputs the user fills in when reviewing the plan
(the confidence says so), rather than an error: a plan shown for review can ask.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from apiq.errors import PlanInvalid, PlanningError
from apiq.planning.chain import Earlier, find_condition, find_link, reuse_literal
from apiq.planning.fill import Filled, fill_from_text
from apiq.planning.rank import fit_factor, shares
from apiq.planning.shapes import response_shape, schema_nouns, slots_of
from apiq.planning.split import Clause, split_request
from apiq.planning.steps import Draft, build_workflow
from apiq.planning.values import STRONG_KINDS, mentions
from apiq.planning.words import (
    ANAPHORS,
    GENERIC_NOUNS,
    STOP_WORDS,
    VERB_METHODS,
    matches,
    tokens,
)
from apiq.workflows import Plan, SourceDescription, Workflow, check_plan

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.catalog.models import Operation
    from apiq.models import Principal
    from apiq.search import CatalogView, SearchHit

__all__ = ["MAX_REQUEST_CHARS", "OfflinePlanner"]

MAX_REQUEST_CHARS = 2_000
"""Longest request planned: plain-English requests are short, and rules cost time per word."""
_SUGGESTIONS = 5


class OfflinePlanner:
    """The default planner: search + schema-aware argument filling + chaining of ids.

    Example:
        >>> planner = OfflinePlanner()
        >>> request = "find sold pets and delete each one"
        >>> plan = await planner.plan(principal, request, view)  # doctest: +SKIP
    """

    def __init__(self, *, min_score: float = 0.2, max_steps: int = 8, candidates: int = 20) -> None:
        """Configure the planner.

        Args:
            min_score: Search hits scoring less are never chosen (`apiq.search`'s scale).
            max_steps: Longest plan; a request with more clauses is refused.
            candidates: Search hits re-ranked per clause.
        """
        self.min_score = min_score
        self.max_steps = max_steps
        self.candidates = candidates

    async def plan(self, principal: Principal, request: str, view: CatalogView) -> Plan:
        """Plan `request` over the sources of `view`.

        Raises:
            PlanningError: A clause matches no operation (with suggestions), the request is
                empty, longer than `MAX_REQUEST_CHARS` or has more than `max_steps`
                clauses, an `if` names nothing a response holds, or the plan does not
                validate.
        """
        if len(request) > MAX_REQUEST_CHARS:
            raise PlanningError(
                f"the request is {len(request):,} characters long; at most "
                f"{MAX_REQUEST_CHARS:,} are planned: say it in fewer words, or in several requests"
            )
        clauses = split_request(request)
        if not clauses:
            raise PlanningError("the request is empty: say what to do, e.g. 'list the orders'")
        if len(clauses) > self.max_steps:
            raise PlanningError(
                f"the request asks for {len(clauses)} steps; plans have at most "
                f"{self.max_steps}: split it into several requests"
            )
        drafts: list[Draft] = []
        for clause in clauses:
            draft = self._choose(clause, drafts, view)
            last = drafts[-1] if drafts else None
            if (
                clause.tentative
                and last is not None
                and (draft is None or draft.operation is last.operation)
            ):
                merged = replace(last.clause, text=f"{last.clause.text} and {clause.text}")
                again = self._choose(merged, drafts[:-1], view, step_id=last.step_id)
                if again is not None:
                    drafts[-1] = again
                    continue
            if draft is None:
                raise self._no_match(clause, request, view)
            drafts.append(draft)
        return self._assemble(request, drafts, view)

    def _choose(
        self, clause: Clause, earlier: list[Draft], view: CatalogView, *, step_id: str = ""
    ) -> Draft | None:
        words = [m.word for m in mentions(clause.text) if m.kind == "word"]
        verb = next((w for w in words if w in VERB_METHODS), None)
        own = [w for w in words if w != verb and w not in _NOT_OWN]
        refers_back = bool(earlier) and (
            clause.each
            or not own
            or any(w in ANAPHORS for w in tokens(clause.text))
            or _names_earlier(words, earlier)
        )
        valued = any(m.kind in STRONG_KINDS for m in mentions(clause.text))
        if not own and not refers_back and not valued:
            return None  # "delete everything": no thing named, no value, nothing before
        shape = earlier[-1].shape if refers_back else None
        context = sorted(shape.nouns - _NOT_OWN - VERB_METHODS.keys()) if shape else []
        # Values (`facebook/react`, 'Crash on startup', 42) say which item, not which
        # operation: they are left out of the search, and matched to slots afterwards.
        spelled = [m.text for m in mentions(clause.text) if m.kind == "word"]  # keeps camelCase
        hits = view.search(" ".join([*spelled, *context]), k=self.candidates)
        step_id = step_id or f"s{len(earlier) + 1}"
        ranked: list[Draft] = []
        related: set[tuple[str, str]] | None = None
        for hit in hits:
            if hit.score < self.min_score:
                continue
            draft = self._draft(
                hit, view, clause, earlier, (words, verb, valued), refers_back, step_id
            )
            # The operation must be about something the clause names beyond its verb: a
            # word of its own text, one search relates to it (`sms` -> message), or values
            # it takes (`follow gaearon`).
            given = {str(f.value).lower() for f in draft.values.values() if f.origin == "text"}
            if own and not shares(own, draft) and not set(own) <= given:
                if related is None:
                    related = {(h.source, h.operation_id) for h in view.search(" ".join(own), k=64)}
                if (hit.source, hit.operation_id) not in related:
                    continue
            ranked.append(draft)
        if not ranked:
            return None
        ranked.sort(key=lambda d: d.score, reverse=True)
        best = ranked[0]
        runner_up = ranked[1].score if len(ranked) > 1 else 0.0
        best.margin = (best.score - runner_up) / best.score if best.score > 0 else 0.0
        if clause.condition is not None:
            best.condition = find_condition(clause.condition, [_earlier(d) for d in earlier])
        return best

    def _draft(
        self,
        hit: SearchHit,
        view: CatalogView,
        clause: Clause,
        earlier: list[Draft],
        wording: tuple[list[str], str | None, bool],
        refers_back: bool,
        step_id: str,
    ) -> Draft:
        words, verb, valued = wording
        catalog = view.catalogs[hit.source]
        operation = hit.operation
        slots, whole_body = slots_of(catalog, operation)
        values = fill_from_text(clause.text, slots, operation, verb=verb)
        links = {}
        before = [_earlier(d) for d in earlier if d.source == hit.source]
        body = operation.request_body
        owner = (
            schema_nouns(next(iter(body.content.values()), {}), operation) if body else frozenset()
        )
        for slot in slots:
            if slot in values:
                continue
            reused = reuse_literal(slot, before)
            if reused is not None:
                values[slot] = reused
            elif (slot.required or refers_back) and (
                link := find_link(slot, operation, owner, before)
            ) is not None:
                links[slot] = link
            elif slot.required and (default := _default(slot.schema)) is not None:
                values[slot] = Filled(default, "the default", "default")
        draft = Draft(
            step_id, clause, hit.source, catalog, operation, hit.score, 1.0, slots, whole_body,
            values, links, response_shape(catalog, operation),
        )  # fmt: skip
        factor = fit_factor(draft, words, verb, refers_back, valued)
        draft.score = hit.score * factor
        return draft

    def _assemble(self, request: str, drafts: list[Draft], view: CatalogView) -> Plan:
        names = _source_names(view.catalogs)
        catalogs = {names[source]: catalog for source, catalog in view.catalogs.items()}
        for draft in drafts:
            draft.source = names[draft.source]
        document, confidence = build_workflow(drafts, qualify=len(view.catalogs) > 1)
        used = dict.fromkeys(d.source for d in drafts)
        try:
            plan = Plan(
                workflow=Workflow.model_validate(document),
                sources=tuple(SourceDescription(name=s, url=catalogs[s].source) for s in used),
                request=request,
                confidence=confidence,
            )
            check_plan(plan, catalogs)
        except (ValidationError, PlanInvalid) as exc:
            raise PlanningError(
                f"the plan for {request!r} does not validate: {exc}",
                suggestions=tuple(_name(d.source, d.operation.operation_id, view) for d in drafts),
            ) from exc
        return plan

    def _no_match(self, clause: Clause, request: str, view: CatalogView) -> PlanningError:
        hits = view.search(clause.text, k=_SUGGESTIONS) or view.search(request, k=_SUGGESTIONS)
        closest = [(h.source, h.operation) for h in hits] or _look_alikes(request, view)
        shown = "; ".join(
            f"{_name(s, op.operation_id, view)} ({op.method.upper()} {op.path}"
            + (f": {op.summary}" if op.summary else "")
            + ")"
            for s, op in closest
        )
        return PlanningError(
            f"no operation of {', '.join(view.catalogs) or 'the view'} does {clause.text!r}"
            + (f"; closest: {shown}" if shown else "")
            + "; rephrase with the words the API uses, or add the API that does it",
            suggestions=tuple(_name(s, op.operation_id, view) for s, op in closest),
        )


_NOT_OWN = STOP_WORDS | GENERIC_NOUNS | ANAPHORS
_DEFINITE = frozenset({"the", "that", "this", "those", "these", "same"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_IDENTIFIER = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _names_earlier(words: list[str], earlier: list[Draft]) -> bool:
    """`the customer`, `that issue`: a definite noun naming what an earlier step found."""
    nouns = {noun for draft in earlier if draft.shape for noun in draft.shape.nouns}
    return any(
        before in _DEFINITE and any(matches(word, noun) for noun in nouns)
        for before, word in itertools.pairwise(words)
    )


def _earlier(draft: Draft) -> Earlier:
    # A looping step's outputs are lists: its literals can be reused, its fields not.
    shape = None if draft.per_item else draft.shape
    return Earlier(draft.step_id, draft.operation, draft.catalog, shape, _literals(draft))


def _literals(draft: Draft) -> dict[str, object]:
    return {
        slot.name: filled.value
        for slot, filled in draft.values.items()
        if filled.origin in ("text", "reused")
    }


def _default(schema: Mapping[str, Any]) -> Any:
    if "default" in schema:
        return schema["default"]
    items = schema.get("items")
    if schema.get("type") == "array" and isinstance(items, Mapping) and "default" in items:
        return [items["default"]]
    return None


def _source_names(catalogs: Mapping[str, Catalog]) -> dict[str, str]:
    """Source -> its name in the plan: itself when it is an Arazzo id (connection ids are),
    else a safe spelling of it (`github.json.gz` -> `github_json_gz`), unique in the view."""
    names: dict[str, str] = {}
    for source in catalogs:
        if _IDENTIFIER.fullmatch(source):
            names[source] = source
            continue
        name = _UNSAFE.sub("_", source)[:60] or "source"
        while name in names.values():
            name = f"{name[:56]}_{len(names)}"
        names[source] = name
    return names


def _name(source: str, operation_id: str, view: CatalogView) -> str:
    return f"{source}.{operation_id}" if len(view.catalogs) > 1 else operation_id


def _look_alikes(request: str, view: CatalogView) -> list[tuple[str, Operation]]:
    """Operations whose summary reads most like the request, when no word is shared."""
    pool = [(s, op) for s, catalog in view.catalogs.items() for op in list(catalog)[:5000]]

    def likeness(pair: tuple[str, Operation]) -> float:
        text = (pair[1].summary or pair[1].operation_id).lower()
        return difflib.SequenceMatcher(None, request.lower(), text).ratio()

    return sorted(pool, key=likeness, reverse=True)[:_SUGGESTIONS]
