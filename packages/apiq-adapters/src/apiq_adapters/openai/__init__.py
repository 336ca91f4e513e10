"""`OpenAIPlanner`: planning with any OpenAI-compatible chat-completions server.

Install with `pip install 'apiq-adapters[openai]'`. OpenAI, Azure OpenAI, Ollama, vLLM and
llama.cpp all work: configure a client yourself, or use `OpenAIPlanner.from_env` with
`OPENAI_API_KEY`, `APIQ_LLM_BASE_URL` and `APIQ_LLM_MODEL`.
"""

from __future__ import annotations

from apiq.errors import MissingDependencyError

try:
    import openai as _openai  # noqa: F401 - the one place the optional dependency is checked
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "the OpenAI planner needs the openai client: pip install 'apiq-adapters[openai]'"
    ) from exc

from apiq_adapters.openai.planner import DEFAULT_MODEL, MAX_TOOLS, OpenAIPlanner

__all__ = ["DEFAULT_MODEL", "MAX_TOOLS", "OpenAIPlanner"]
