"""What every edge (WebSocket frames, REST bodies, query and path parameters) refuses
before a handler or the store sees it: NUL characters, which PostgreSQL text and jsonb
cannot hold, and integers the store's bigint cannot hold."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StrictStr

#: The largest integer the store holds (PostgreSQL bigint).
INT64_MAX = 2**63 - 1
NUL = "\x00"
NUL_MESSAGE = "must not contain NUL characters"


def no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError(NUL_MESSAGE)
    return value


#: A string from a client: no NUL character.
Str = Annotated[StrictStr, AfterValidator(no_nul)]


def has_nul(value: Any) -> bool:
    """True if any string (or map key) in a decoded JSON document holds a NUL. Iterative:
    documents may be nested deeper than Python's recursion limit."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and NUL in key:
                    return True
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


_ASCII_INT = re.compile(r"-?[0-9]{1,20}")


def _ascii_int(value: object) -> object:
    # int() and pydantic's lax mode take " 5", "+5", "1_0", "5.0" and full-width digits
    if isinstance(value, str) and not _ASCII_INT.fullmatch(value):
        raise ValueError("must be a whole number written in ASCII digits")
    return value


#: An integer from a query string is written in ASCII digits only:
#: `Annotated[int, Field(ge=..., le=...), ASCII_DIGITS]` (the bounds go before the validator
#: so that the JSON schema shows them as minimum and maximum). Spelled out at each field,
#: not made by a function, so that type checkers see an int.
ASCII_DIGITS = BeforeValidator(_ascii_int)
