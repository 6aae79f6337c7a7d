"""Who a request acts for, as the gateway asserts it to the services.

The gateway puts the verified token's subject in `X-User-Id` and its roles in `X-User-Roles`
(and strips any copy a client sends). A subject is a non-empty run of printable ASCII without
surrounding spaces, so it survives a header intact; an empty or blank one names nobody and is
never mistaken for "no user" (an internal caller).
"""

import re
from dataclasses import dataclass
from typing import Self

USER_ID_HEADER, ROLES_HEADER = "X-User-Id", "X-User-Roles"
KNOWN_ROLES = frozenset({"admin", "customer"})
MAX_SUBJECT_LENGTH = 255
_SUBJECT = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def valid_subject(subject: object) -> bool:
    return (isinstance(subject, str) and len(subject) <= MAX_SUBJECT_LENGTH
            and _SUBJECT.fullmatch(subject) is not None)


@dataclass(frozen=True)
class Caller:
    """The caller of a service: a user the gateway vouches for, or (no headers at all) another
    service of the platform."""

    user_id: str | None = None
    roles: frozenset[str] = frozenset()

    @classmethod
    def from_headers(cls, user_id: str | None, roles: str | None) -> Self:
        """ValueError when a header is present but names no valid user or role."""
        if user_id is None:
            if roles is not None:
                raise ValueError(f"{ROLES_HEADER} was sent without {USER_ID_HEADER}")
            return cls()
        if not valid_subject(user_id):
            raise ValueError(f"{USER_ID_HEADER} must be 1 to {MAX_SUBJECT_LENGTH} printable "
                             "characters without surrounding spaces")
        names = frozenset(role.strip() for role in (roles or "").split(",") if role.strip())
        if not names <= KNOWN_ROLES:
            raise ValueError(f"{ROLES_HEADER} may only list {', '.join(sorted(KNOWN_ROLES))}")
        return cls(user_id, names)

    @property
    def is_internal(self) -> bool:
        return self.user_id is None

    @property
    def sees_everything(self) -> bool:
        return self.is_internal or "admin" in self.roles

    def may_see(self, customer_id: str | None) -> bool:
        return self.sees_everything or customer_id == self.user_id
