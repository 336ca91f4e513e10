"""A loopback server that speaks the OpenAI chat-completions protocol, with scripted answers.

`POST /v1/chat/completions` (point a client at `service.url("/v1")`) answers with the next
`Answer` of the script, as JSON or, when the request says `"stream": true`, as server-sent
events: `data: {chunk}` lines whose tool calls arrive in pieces (the name once, then the
arguments JSON in fragments of a few characters, as OpenAI, vLLM and llama.cpp send them),
a last chunk with the finish reason and `data: [DONE]`.

Every request body is kept, parsed, in `service.bodies`, so tests read exactly what a model
would have seen (`service.seen_text()` gathers every message and tool definition string).
An `Answer` can also be an HTTP error, bytes that are not JSON, an error event in the middle
of a stream, or come late (`delay_s`; released when the service stops). With the script
empty the service answers 500, so a planner that asks once too often fails loudly.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Self

from tests.services import LoopbackService, Reply, ServiceRequest, json_reply

__all__ = ["Answer", "LlmService", "ScriptedCall", "answer_calls", "answer_text"]

FRAGMENT = 7
"""Characters of tool-call arguments per streamed chunk."""


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    """One tool call the scripted model makes."""

    name: str
    arguments: Any
    """A JSON-ready value (sent as its JSON text) or a `str` sent exactly as written."""

    @property
    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server says to one request."""

    calls: tuple[ScriptedCall, ...] = ()
    content: str | None = None
    status: int = 200
    error: dict[str, Any] | None = None
    """The JSON body of a non-200 answer (OpenAI's `{"error": {...}}` shape)."""
    raw: bytes | None = None
    """Sent as the whole body instead of a completion (junk, truncated JSON, ...)."""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    """Seconds to wait before answering (cut short when the service stops)."""
    stream_error: str | None = None
    """Streaming only: an error event sent after the first chunk, instead of the rest."""
    finish_reason: str | None = None


def answer_calls(*calls: tuple[str, Any], content: str | None = None) -> Answer:
    """An answer with tool calls `(name, arguments)` in order."""
    return Answer(calls=tuple(ScriptedCall(name, args) for name, args in calls), content=content)


def answer_text(content: str) -> Answer:
    """An answer with text only, no tool call."""
    return Answer(content=content)


class LlmService(LoopbackService):
    """The scripted chat-completions server (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: deque[Answer] = deque()
        self.bodies: list[dict[str, Any]] = []
        self._stopping = threading.Event()

    def script(self, *answers: Answer) -> Self:
        """Queue `answers`, given one per request in order."""
        with self.lock:
            self.answers.extend(answers)
        return self

    def reset(self) -> None:
        """Forget the script and every recorded request."""
        super().reset()
        with self.lock:
            self.answers.clear()
            self.bodies.clear()

    def start(self) -> Self:
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        self._stopping.set()  # release delayed answers so their threads end
        super().stop()

    def seen_text(self) -> list[str]:
        """Every string of every request body (messages, tools, schemas), decoded."""
        with self.lock:
            return list(_strings(self.bodies))

    def handle(self, request: ServiceRequest) -> Reply:
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return json_reply(404, {"error": {"message": f"no route {request.path}"}})
        body = request.json()
        with self.lock:
            self.bodies.append(body)
            answer = self.answers.popleft() if self.answers else None
        if answer is None:
            return json_reply(500, {"error": {"message": "the script has no answer left"}})
        if answer.delay_s:
            self._stopping.wait(answer.delay_s)
        if answer.raw is not None:
            return Reply(answer.status, answer.raw, {"Content-Type": "application/json"})
        if answer.status != 200:
            return json_reply(answer.status, answer.error or {"error": {}}, answer.headers)
        model = str(body.get("model", ""))
        if body.get("stream"):
            events = b"".join(_sse(chunk) for chunk in _chunks(answer, model))
            return Reply(200, events + b"data: [DONE]\n\n", {"Content-Type": "text/event-stream"})
        return json_reply(200, _completion(answer, model))


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_text},
        }
        for index, call in enumerate(answer.calls)
    ]


def _finish(answer: Answer) -> str:
    return answer.finish_reason or ("tool_calls" if answer.calls else "stop")


def _completion(answer: Answer, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.calls:
        message["tool_calls"] = _tool_calls(answer)
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(answer)}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunks(answer: Answer, model: str) -> Iterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    if answer.stream_error is not None:
        yield {"error": {"message": answer.stream_error, "type": "server_error"}}
        return
    if answer.content:
        for start in range(0, len(answer.content), FRAGMENT):
            yield chunk({"content": answer.content[start : start + FRAGMENT]})
    for index, call in enumerate(_tool_calls(answer)):
        head = {"index": index, "id": call["id"], "type": "function"}
        function = call["function"]
        yield chunk({"tool_calls": [head | {"function": {"name": function["name"]}}]})
        text = function["arguments"]
        for start in range(0, len(text), FRAGMENT):
            piece = {"index": index, "function": {"arguments": text[start : start + FRAGMENT]}}
            yield chunk({"tool_calls": [piece]})
    yield chunk({}, _finish(answer))


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
