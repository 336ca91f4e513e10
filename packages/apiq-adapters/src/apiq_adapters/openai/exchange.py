"""One exchange with a chat-completions server: ask, read the answer, translate failures.

`ask` sends the messages and tools, reads a JSON answer or a stream of server-sent events
(tool-call names and argument fragments put back together by index) and returns a
`ModelAnswer`. Whatever goes wrong on the way is a `PlanningError` whose message says what
happened and what to check, sanitized: no API key, no URL user info, no invisible text.
The `openai` error classes stop here; core never sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio
import openai

from apiq.errors import PlanningError
from apiq.planning import sanitize_text
from apiq_adapters.openai.prompt import ModelAnswer, ModelCall

__all__ = ["MAX_ANSWER_CHARS", "MAX_STREAM_CHUNKS", "ask", "safe_url"]

MAX_ANSWER_CHARS = 1_000_000
"""Most characters of text and arguments one answer may hold."""
MAX_STREAM_CHUNKS = 100_000
"""Most server-sent events read from one streamed answer."""
_NOTHING_RAN = "nothing was executed"


async def ask(
    client: openai.AsyncOpenAI,
    *,
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    stream: bool,
    timeout_s: float,
) -> ModelAnswer:
    """The model's answer to `messages` with `tools` offered.

    Raises:
        PlanningError: The server could not be reached, timed out, refused, or answered
            something that is not a chat completion.
    """
    request: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "tools": tools,
        "tool_choice": "auto",
        "timeout": timeout_s,
    }
    where = safe_url(str(client.base_url))
    try:
        with anyio.fail_after(timeout_s):
            if not stream:
                completion = await client.chat.completions.create(**request)
                return _answer_of(completion)
            chunks = []
            events = await client.chat.completions.create(**request, stream=True)
            try:
                async for chunk in events:
                    chunks.append(chunk)
                    if len(chunks) > MAX_STREAM_CHUNKS:
                        raise PlanningError(
                            f"the language model at {where} streamed more than "
                            f"{MAX_STREAM_CHUNKS} events; {_NOTHING_RAN}"
                        )
            finally:
                await events.close()
    except PlanningError:
        raise
    except (TimeoutError, openai.APITimeoutError):
        raise PlanningError(
            f"the language model at {where} did not answer within {timeout_s:g} s; "
            f"{_NOTHING_RAN}. Try again, or raise the planner's timeout_s"
        ) from None
    except openai.APIConnectionError as exc:
        raise PlanningError(
            f"could not reach the language model at {where} ({type(exc.__cause__ or exc).__name__}"
            f"); {_NOTHING_RAN}. Check APIQ_LLM_BASE_URL and that the server runs"
        ) from exc
    except openai.APIStatusError as exc:
        raise PlanningError(_status_message(exc, where, client)) from exc
    except openai.APIError as exc:  # an error event in the middle of a stream
        raise PlanningError(
            f"the language model at {where} reported an error: "
            f"{_clean(exc.message, client)}; {_NOTHING_RAN}"
        ) from exc
    except Exception as exc:  # any other failure inside the client library
        raise PlanningError(
            f"the language model at {where} answered something that is not a chat completion "
            f"({type(exc).__name__}: {_clean(str(exc), client)}); {_NOTHING_RAN}"
        ) from exc
    return _answer_of_stream(chunks, where)


def _status_message(exc: openai.APIStatusError, where: str, client: openai.AsyncOpenAI) -> str:
    status = exc.status_code
    detail = _clean(_provider_message(exc.body) or "", client)
    said = f": {detail}" if detail else ""
    if isinstance(exc, openai.RateLimitError):
        retry = exc.response.headers.get("retry-after")
        later = f"; retry after {_clean(retry, client)} s" if retry else "; try again later"
        return f"the language model at {where} is rate limited (HTTP 429){said}{later}"
    if status in (401, 403):
        hint = "check OPENAI_API_KEY"
    elif status == 404:
        hint = "check APIQ_LLM_MODEL and APIQ_LLM_BASE_URL"
    elif status >= 500:
        hint = "the server failed; try again later"
    else:
        hint = "the server refused the request"
    return f"the language model at {where} answered HTTP {status}{said}; {hint}; {_NOTHING_RAN}"


def _provider_message(body: object) -> str | None:
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        return message if isinstance(message, str) else None
    return body if isinstance(body, str) else None


def _clean(text: str, client: openai.AsyncOpenAI) -> str:
    """Provider text fit for an error message: the API key masked, sanitized, short."""
    key = client.api_key if isinstance(client.api_key, str) else ""
    if len(key) >= 8:
        text = text.replace(key, "***")
    return sanitize_text(text, 200)


def safe_url(url: str | None) -> str:
    """`url` without user info, query or fragment, for messages."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return sanitize_text(f"{parts.scheme}://{host}{parts.path}".rstrip("/"), 200)


def _answer_of(completion: Any) -> ModelAnswer:
    """The first choice of a JSON answer; junk shapes raise PlanningError."""
    try:
        message = completion.choices[0].message
        calls = tuple(
            ModelCall(
                id=str(call.id or f"call_{index}"),
                name=str(call.function.name or ""),
                arguments=str(call.function.arguments or ""),
            )
            for index, call in enumerate(message.tool_calls or ())
        )
        content = message.content if isinstance(message.content, str) else ""
        finish = completion.choices[0].finish_reason
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise PlanningError(
            f"the language model's answer has no readable message ({type(exc).__name__}); "
            f"{_NOTHING_RAN}"
        ) from None
    _check_size(content, calls)
    return ModelAnswer(calls, content, finish if isinstance(finish, str) else None)


def _answer_of_stream(chunks: Sequence[Any], where: str) -> ModelAnswer:
    """Text and tool calls of a streamed answer, fragments joined by call index."""
    content: list[str] = []
    slots: dict[int, list[str]] = {}
    ids: dict[int, str] = {}
    names: dict[int, list[str]] = {}
    finish: str | None = None
    try:
        for chunk in chunks:
            for choice in chunk.choices or ():
                if choice.index not in (0, None):
                    continue  # only the first choice is planned
                delta = choice.delta
                if delta is not None and isinstance(delta.content, str):
                    content.append(delta.content)
                for call in (delta.tool_calls if delta is not None else None) or ():
                    index = int(call.index or 0)
                    if call.id:
                        ids[index] = str(call.id)
                    function = call.function
                    if function is not None:
                        name = names.setdefault(index, [])
                        if function.name and "".join(name) != function.name:
                            name.append(str(function.name))  # some servers repeat it whole
                        slots.setdefault(index, []).append(str(function.arguments or ""))
                if isinstance(choice.finish_reason, str):
                    finish = choice.finish_reason
    except (AttributeError, TypeError, ValueError) as exc:
        raise PlanningError(
            f"the language model at {where} streamed chunks that are not chat-completion "
            f"chunks ({type(exc).__name__}); {_NOTHING_RAN}"
        ) from None
    calls = tuple(
        ModelCall(
            id=ids.get(index, f"call_{index}"),
            name="".join(names.get(index, [])),
            arguments="".join(slots.get(index, [])),
        )
        for index in sorted(set(slots) | set(names))
    )
    text = "".join(content)
    _check_size(text, calls)
    return ModelAnswer(calls, text, finish)


def _check_size(content: str, calls: Sequence[ModelCall]) -> None:
    size = len(content) + sum(len(call.arguments) + len(call.name) for call in calls)
    if size > MAX_ANSWER_CHARS:
        raise PlanningError(
            f"the language model's answer holds more than {MAX_ANSWER_CHARS} characters; "
            f"{_NOTHING_RAN}"
        )
