"""Base models for everything a client sends: JSON bodies and query strings.

PostgreSQL's text types cannot hold the NUL character, so a string carrying one is refused
here, once for every field of every service (422 naming the field), before it reaches SQL.
"""

from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

NUL = "\x00"


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_nul(element) for element in value)
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(element) for key, element in value.items())
    return False  # numbers, None, and nested models (which check their own fields)


class ClientInput(BaseModel):
    """Refuses NUL in any string field; nested models inherit the rule and name their field."""

    @field_validator("*")
    @classmethod
    def _no_nul_character(cls, value: Any) -> Any:
        if _holds_nul(value):
            raise ValueError("must not contain the NUL character (\\u0000)")
        return value


class RequestBody(ClientInput):
    """A JSON body: unknown fields are refused and types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class QueryString(ClientInput):
    """Query parameters: unknown ones are refused; values arrive as text and are parsed."""

    model_config = ConfigDict(extra="forbid")


class _Line(Protocol):
    item_id: int


LineT = TypeVar("LineT", bound=_Line)


def each_item_once(lines: list[LineT]) -> list[LineT]:
    """Lines of one order or reservation name each item once (pydantic's AfterValidator):
    two lines of one item would be two prices and two quantities for one thing."""
    if len({line.item_id for line in lines}) != len(lines):
        raise ValueError("each item_id may appear once")
    return lines
