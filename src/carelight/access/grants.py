"""Which SMART scopes an account may be granted, and narrowing a request to them.

Scopes use the SMART App Launch v1 form ``context/Type.permission``: the context is
``patient`` (the signed-in patient's own record), ``user`` (whatever the signed-in person may
see) or ``system`` (a source system's client); the type is a FHIR resource type or ``*``; the
permission is ``read``, ``write`` or ``*``. SMART v2 permissions (``.rs``, ``.cruds``) are
understood too: c, u and d are write; r and s are read.

A scope is a ceiling, not a permission: the gate still decides every request.
"""

from __future__ import annotations

import re

from carelight.access.principal import NON_IDENTIFIABLE_ROLES, PROFESSIONAL_ROLES, Role

_SCOPE = re.compile(r"(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.(read|write|\*|c?r?u?d?s?)")
_V1 = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}


def role_scopes(role: Role) -> frozenset[str]:
    """The scopes an account of this role may hold unless an administrator says otherwise."""
    if role is Role.PATIENT:
        # Their own record, and their own opt-out choices (Consent).
        return frozenset({"patient/*.read", "patient/Consent.write"})
    if role is Role.SYSTEM:
        return frozenset({"system/*.read", "system/*.write"})
    if role is Role.RESEARCH_EXTRACT:
        # A service that reads (through the gate's research condition); no token carries it.
        return frozenset({"system/*.read"})
    if role in PROFESSIONAL_ROLES:
        return frozenset({"user/*.read", "user/*.write"})
    if role in NON_IDENTIFIABLE_ROLES or role in (Role.ADMIN, Role.DATA_QUALITY):
        # user/ means "what this person may see": for these roles the gate allows no
        # identifiable record, so a read scope lets their tools identify them and no more.
        return frozenset({"user/*.read"})
    raise ValueError(f"No default scopes for role {role!r}.")


def parse_scope(scope: str) -> tuple[str, str, frozenset[str]]:
    """(context, resource type or ``*``, permission letters); ValueError if not a SMART scope."""
    m = _SCOPE.fullmatch(scope)
    if m is None or not m.group(3):
        raise ValueError(
            f"'{scope}' is not a scope this server knows: use context/Type.permission, "
            "e.g. patient/*.read, user/Observation.read or system/*.write."
        )
    context, res_type, perm = m.groups()
    return context, res_type, _V1.get(perm, frozenset(perm))


def covers(allowed: str, requested: str) -> bool:
    """True if holding ``allowed`` includes everything ``requested`` asks for."""
    a_context, a_type, a_perms = parse_scope(allowed)
    r_context, r_type, r_perms = parse_scope(requested)
    return a_context == r_context and (a_type == "*" or a_type == r_type) and r_perms <= a_perms


class ScopeRefused(ValueError):
    """A requested scope is malformed or beyond what the account may hold (invalid_scope)."""


def narrow(allowed: frozenset[str], requested: str | None) -> frozenset[str]:
    """The scopes to grant for a request: all allowed ones when none are asked for, else
    exactly those asked for, each of which must be covered by an allowed scope."""
    if requested is None or not requested.strip():
        return allowed
    granted = set()
    for scope in requested.split():
        try:
            parse_scope(scope)
        except ValueError as exc:
            raise ScopeRefused(str(exc)) from None
        if not any(covers(a, scope) for a in allowed):
            raise ScopeRefused(
                f"'{scope}' is beyond what this account may be granted "
                f"({' '.join(sorted(allowed)) or 'no scopes'})."
            )
        granted.add(scope)
    return frozenset(granted)


def check_scopes(scopes: frozenset[str] | set[str]) -> frozenset[str]:
    """The scopes, each checked to be well formed (ValueError with the bad one otherwise)."""
    for scope in scopes:
        parse_scope(scope)
    return frozenset(scopes)


_WHOSE = {
    "patient": "your own record",
    "user": "the records you are allowed to see",
    "system": "your organisation's records",
}


def describe(scope: str) -> str:
    """A scope in words, for the sign-in page that asks a person to agree to it."""
    context, res_type, perms = parse_scope(scope)
    verbs = [v for v, letters in (("read", "rs"), ("change", "cud")) if perms & set(letters)]
    what = "everything in" if res_type == "*" else f"{res_type} resources in"
    return f"{' and '.join(verbs).capitalize()} {what} {_WHOSE[context]}"


def all_scopes() -> list[str]:
    """Every scope some role holds by default (for /.well-known/smart-configuration)."""
    return sorted({s for role in Role for s in role_scopes(role)})
