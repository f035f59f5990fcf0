"""Staff roles, each a set of permissions, and the one question the admin API asks of them.

A permission names a kind of action, not an endpoint, so the table stays readable as the admin
API grows: the endpoint says which permission it needs, and ``allowed`` answers. Reading is a
permission of its own (``read``) that every role has; everything that changes state needs a
more specific one. A role never implies another: an operator who must also move money holds
``operator`` and ``treasury``, and who approves a withdrawal must hold ``approver`` (the second
person of a four-eyes rule is a separate grant, never implied by ``admin``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["PERMISSIONS_BY_ROLE", "ROLES", "Permission", "Role", "allowed", "check_roles"]


class Permission(StrEnum):
    """What an action needs. The values are what logs and records show."""

    READ = "read"
    OPERATORS_WRITE = "operators.write"  # operators, their roles, service tokens
    INSTRUMENTS_WRITE = "instruments.write"  # instruments and their trading states
    KILL_SWITCH = "killswitch.write"
    ACCOUNTS_WRITE = "accounts.write"
    API_KEYS_WRITE = "apikeys.write"
    ORDERS_WRITE = "orders.write"  # order entry and mass cancel through the admin API
    MONEY_WRITE = "money.write"  # deposits, adjustments, withdrawal requests
    APPROVALS_APPROVE = "approvals.approve"  # the second person of what needs two
    SURVEILLANCE_READ = "surveillance.read"
    CASES_WRITE = "cases.write"  # surveillance cases and account freezes
    AUDIT_READ = "audit.read"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    TREASURY = "treasury"
    APPROVER = "approver"
    COMPLIANCE = "compliance"
    AUDITOR = "auditor"


P = Permission

#: What each role may do. ``read`` is everyone's.
PERMISSIONS_BY_ROLE: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({P.READ, P.OPERATORS_WRITE, P.AUDIT_READ}),
    Role.OPERATOR: frozenset(
        {
            P.READ,
            P.INSTRUMENTS_WRITE,
            P.KILL_SWITCH,
            P.ACCOUNTS_WRITE,
            P.API_KEYS_WRITE,
            P.ORDERS_WRITE,
        }
    ),
    Role.TREASURY: frozenset({P.READ, P.MONEY_WRITE}),
    Role.APPROVER: frozenset({P.READ, P.APPROVALS_APPROVE}),
    Role.COMPLIANCE: frozenset({P.READ, P.SURVEILLANCE_READ, P.CASES_WRITE, P.AUDIT_READ}),
    Role.AUDITOR: frozenset({P.READ, P.SURVEILLANCE_READ, P.AUDIT_READ}),
}

#: The role names, as the store and the command line take them.
ROLES = frozenset(role.value for role in Role)


def allowed(roles: Iterable[str], permission: str) -> bool:
    """Whether any of ``roles`` grants ``permission``; unknown roles and permissions grant
    nothing (a record written by a newer venue never widens what an older one allows)."""
    return any(name in ROLES and permission in PERMISSIONS_BY_ROLE[Role(name)] for name in roles)


def check_roles(roles: Iterable[str]) -> frozenset[str]:
    """``roles`` as a set of known role names, or ``ValueError`` naming the first unknown one
    (one line); at least one role."""
    if isinstance(roles, str):
        raise ValueError("roles must be a collection of names, not a string")
    wanted = frozenset(roles)
    for name in sorted(wanted, key=repr):
        if name not in ROLES:
            known = ", ".join(sorted(ROLES))
            raise ValueError(f"unknown role {' '.join(repr(name).split())[:40]}: known are {known}")
    if not wanted:
        raise ValueError("at least one role is needed")
    return wanted
