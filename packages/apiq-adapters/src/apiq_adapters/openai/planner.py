"""`OpenAIPlanner`: plans with any OpenAI-compatible chat-completions server, runs nothing.

One `plan` call: the view's search picks at most k operations -> each becomes a tool
(`apiq.planning.tool_for`) -> the model answers with function calls, one per step
(`prompt`) -> the calls become a plan (`tool_calls`) -> `apiq.workflows.check_plan`
validates it -> on problems, one repair round (`max_repairs`) shows the model what is wrong
-> still invalid: `PlanningError` listing the problems. Provider failures (connection,
timeout, rate limit, HTTP errors, unreadable answers) become `PlanningError` too.

Works with OpenAI, Azure OpenAI (v1 endpoint), Ollama, vLLM and llama.cpp: it uses plain
chat completions with `tools`, nothing provider-specific. The planner never holds a
credential other than the model's own API key, which the client sends as a header.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import openai

from apiq.errors import ConfigurationError, PlanInvalid, PlanningError, SpecError
from apiq.planning import Tool, sanitize_text, tool_for
from apiq.workflows import check_plan
from apiq_adapters.openai.exchange import ask, safe_url
from apiq_adapters.openai.prompt import opening_messages, repair_messages
from apiq_adapters.openai.tool_calls import plan_from_calls

if TYPE_CHECKING:
    from apiq.catalog import Catalog
    from apiq.models import Principal
    from apiq.search import CatalogView, SearchHit
    from apiq.workflows import Plan

__all__ = ["DEFAULT_MODEL", "MAX_TOOLS", "OpenAIPlanner"]

DEFAULT_MODEL = "gpt-4o-mini"
"""The model `from_env` uses with OpenAI itself when `APIQ_LLM_MODEL` is not set."""
MAX_TOOLS = 64
"""Most tools one request shows (DESIGN.md decision 6; OpenAI refuses more than 128)."""
_MAX_PROBLEMS_IN_ERROR = 10


class OpenAIPlanner:
    """Plans requests with a chat-completions model (module docstring).

    Args:
        client: An `openai.AsyncOpenAI` (or `AsyncAzureOpenAI`) client; borrowed: the caller
            closes it (except when `from_env` made it: then `aclose` does).
        model: The model name the server knows (`gpt-4o-mini`, `llama3.1`, ...).
        k: Most operations shown to the model per request (1 to 64).
        timeout_s: Bound on each exchange with the model, retries and streaming included.
        max_repairs: Rounds in which the model sees the problems of its plan and tries again.
        stream: Ask for server-sent events instead of one JSON answer.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        k: int = 32,
        timeout_s: float = 60.0,
        max_repairs: int = 1,
        stream: bool = False,
    ) -> None:
        if not 1 <= k <= MAX_TOOLS:
            raise ConfigurationError(f"k must be between 1 and {MAX_TOOLS}, not {k}")
        if timeout_s <= 0 or max_repairs < 0:
            raise ConfigurationError(
                f"timeout_s must be positive and max_repairs not negative ({timeout_s}, "
                f"{max_repairs})"
            )
        if not model:
            raise ConfigurationError("model must name the model to use")
        self.client = client
        self.model = model
        self.k = k
        self.timeout_s = timeout_s
        self.max_repairs = max_repairs
        self.stream = stream
        self._owns_client = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> OpenAIPlanner:
        """A planner configured from `OPENAI_API_KEY`, `APIQ_LLM_BASE_URL`, `APIQ_LLM_MODEL`.

        Args:
            environ: Where to read them (default `os.environ`).
            **options: `k`, `timeout_s`, `max_repairs`, `stream`.

        Raises:
            ConfigurationError: Neither a key nor a base URL is set, or a base URL is set
                without a model name.
        """
        env = os.environ if environ is None else environ
        key = env.get("OPENAI_API_KEY") or None
        base_url = env.get("APIQ_LLM_BASE_URL") or None
        model = env.get("APIQ_LLM_MODEL") or (DEFAULT_MODEL if base_url is None else None)
        if key is None and base_url is None:
            raise ConfigurationError(
                "no language model configured: set OPENAI_API_KEY (OpenAI), or "
                "APIQ_LLM_BASE_URL and APIQ_LLM_MODEL (any OpenAI-compatible server)"
            )
        if model is None:
            raise ConfigurationError(
                f"APIQ_LLM_BASE_URL is set ({safe_url(base_url)}) but APIQ_LLM_MODEL is not: "
                "name the model that server should use"
            )
        client = openai.AsyncOpenAI(
            # Local servers (Ollama, vLLM, llama.cpp) take any key; the client wants one.
            api_key=key or "no-key",
            base_url=base_url or "https://api.openai.com/v1",
        )
        planner = cls(client, model=model, **options)
        planner._owns_client = True
        return planner

    async def aclose(self) -> None:
        """Close the client if `from_env` made it; a borrowed client stays open."""
        if self._owns_client:
            await self.client.close()

    async def plan(self, principal: Principal, request: str, view: CatalogView) -> Plan:
        """Plan `request` over the operations of `view`; nothing is sent to any API.

        Raises:
            PlanningError: No operation fits, the model failed or proposed nothing, or its
                plan is still invalid after the repair rounds (the message lists why).
        """
        catalogs = view.catalogs
        tools = _tools(view.search(request, k=self.k), catalogs)
        if not tools:
            raise PlanningError(
                "no operation of the connected APIs matches the request; connect an API that "
                "offers it or rephrase the request"
            )
        definitions = [tool.to_openai() for tool in tools.values()]
        messages = opening_messages(request)
        problems: list[str] = []
        for attempt in range(self.max_repairs + 1):
            answer = await ask(
                self.client,
                model=self.model,
                messages=messages,
                tools=definitions,
                stream=self.stream,
                timeout_s=self.timeout_s,
            )
            if not answer.calls:
                said = sanitize_text(answer.content, 300)
                raise PlanningError(
                    f"the language model proposed no API call; it said: {said}"
                    if said
                    else "the language model answered with neither an API call nor any text "
                    f"(finish reason {answer.finish_reason!r:.40}); nothing was executed"
                )
            plan, problems = plan_from_calls(answer.calls, tools, catalogs, request)
            if plan is not None:
                try:
                    check_plan(plan, catalogs)
                except PlanInvalid as exc:
                    problems = [str(problem) for problem in exc.problems]
                else:
                    return plan
            if attempt < self.max_repairs:
                messages = [*messages, *repair_messages(answer, problems)]
        shown = "; ".join(sanitize_text(p, 300) for p in problems[:_MAX_PROBLEMS_IN_ERROR])
        more = len(problems) - _MAX_PROBLEMS_IN_ERROR
        raise PlanningError(
            f"the language model's plan is invalid after {self.max_repairs} repair round(s), "
            f"so nothing will run: {shown}" + (f"; and {more} more" if more > 0 else "")
        )


def _tools(hits: Sequence[SearchHit], catalogs: Mapping[str, Catalog]) -> dict[str, Tool]:
    """Tool name -> tool for each hit, in rank order; operations that cannot be shown are
    skipped (their spec error is the ingest's to report, not the planner's)."""
    tools: dict[str, Tool] = {}
    for hit in hits[:MAX_TOOLS]:
        catalog = catalogs.get(hit.source)
        if catalog is None:
            continue
        try:
            tool = tool_for(hit.source, catalog, hit.operation_id)
        except SpecError:
            continue
        tools.setdefault(tool.name, tool)
    return tools


if TYPE_CHECKING:
    from apiq.ports import Planner

    _: type[Planner] = OpenAIPlanner
