"""Planning: from a plain-English request to a plan over the operations a principal may use.

`tool_for` / `tool_name` turn operations into language-model tools and `sanitize_text`
makes spec text safe to show a model; planners themselves (`OfflinePlanner`, and
`apiq_adapters.openai.OpenAIPlanner`) return a `Plan` that `apiq.workflows.check_plan`
has accepted, and never execute anything.
"""

from __future__ import annotations

from apiq.planning.offline import OfflinePlanner
from apiq.planning.sanitize import api_data, sanitize_text, strip_invisible
from apiq.planning.tools import TOOL_NAME_PATTERN, Tool, tool_for, tool_name

__all__ = [
    "TOOL_NAME_PATTERN",
    "OfflinePlanner",
    "Tool",
    "api_data",
    "sanitize_text",
    "strip_invisible",
    "tool_for",
    "tool_name",
]
