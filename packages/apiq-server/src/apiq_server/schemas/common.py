"""The response envelope, pagination and the base classes of every schema."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "MAX_PAGE",
    "Envelope",
    "ErrorBody",
    "ErrorEnvelope",
    "Page",
    "RequestModel",
    "ResponseModel",
    "ok",
]

T = TypeVar("T")

MAX_PAGE = 100
"""Most items one page may hold (a larger `limit` is refused)."""


def _json_bool(value: object) -> object:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


JsonBool = Annotated[bool, BeforeValidator(_json_bool)]
"""A boolean of a request: `true` or `false` only (not 0, 1 or "yes")."""


class RequestModel(BaseModel):
    """A request body: unknown fields are refused; camelCase or snake_case names."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


class ResponseModel(BaseModel):
    """A response body, written in camelCase."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class Envelope(ResponseModel, Generic[T]):
    """`{success: true, data: ...}`: every successful response."""

    success: Literal[True] = True
    data: T


class Page(ResponseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    offset: int
    limit: int


class ErrorBody(ResponseModel):
    """What went wrong: a stable `code`, a sanitized `message`, structured `details`."""

    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorEnvelope(ResponseModel):
    """`{success: false, error: {...}}`: every error response."""

    success: Literal[False] = False
    error: ErrorBody


def ok(data: T) -> Envelope[T]:
    """Wrap `data` in the success envelope."""
    return Envelope[T](data=data)
