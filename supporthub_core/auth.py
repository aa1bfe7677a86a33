"""JWT tokens (HS256) and roles. Only HS256 is ever accepted: `alg: none` and others fail."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from supporthub_core.errors import Forbidden, Unauthorized

Role = Literal["user", "agent", "supervisor", "service"]
ROLES: tuple[str, ...] = ("user", "agent", "supervisor", "service")
STAFF_ROLES = frozenset({"agent", "supervisor"})
ALGORITHM = "HS256"
MAX_SUB_LEN = 128


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    role: Role
    name: str | None = None
    exp: int = 0

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def display_name(self) -> str:
        return self.name or self.sub


def issue_token(
    secret: str, sub: str, role: str, *, name: str | None = None, ttl: int = 3600
) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    claims: dict[str, Any] = {"sub": str(sub), "role": role, "exp": int(time.time()) + int(ttl)}
    if name:
        claims["name"] = name
    with warnings.catch_warnings():  # short dev secrets are the operator's choice
        warnings.simplefilter("ignore")
        return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: object) -> Claims:
    """Return the token's claims or raise Unauthorized. `exp` is required."""
    if not isinstance(token, str) or not token:
        raise Unauthorized("missing token")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = jwt.decode(
                token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "role"]}
            )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    sub, role, name = data.get("sub"), data.get("role"), data.get("name")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB_LEN:
        raise Unauthorized("invalid token: bad sub")
    if role not in ROLES:
        raise Unauthorized("invalid token: bad role")
    if name is not None and not isinstance(name, str):
        name = None
    return Claims(sub=sub, role=role, name=name, exp=int(data["exp"]))


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_role(claims: Claims, *roles: str) -> None:
    if claims.role not in roles:
        raise Forbidden(f"requires role {' or '.join(roles)}")
