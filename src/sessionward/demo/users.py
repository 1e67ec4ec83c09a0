"""The demo's accounts: Argon2id password hashes kept in memory.

Users are not session data: they live here, apart from the store, and a password change
is kept in this process's memory only (the demo has no user database). Verification
costs the same whether or not the user exists, so response times do not reveal which
names are accounts (user enumeration).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sessionward.core.errors import ConfigError

USERS_VARIABLE = "SESSIONWARD_DEMO_USERS"
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 128
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")

# A few of the most common passwords; a real deployment checks a breach corpus (ASVS V6.2.4).
_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "passw0rd",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "qwerty123",
        "iloveyou",
        "sunshine",
        "football",
        "baseball",
        "welcome1",
        "letmein1",
        "admin123",
        "abc12345",
        "11111111",
        "00000000",
        "trustno1",
    }
)


@dataclass(frozen=True, slots=True)
class UserSpec:
    """An account as configured: name, password in clear (hashed at start-up), admin flag."""

    name: str
    password: str
    admin: bool = False

    def __repr__(self) -> str:
        # Never print a password, even a demo one, in a traceback or a log line.
        return f"UserSpec(name={self.name!r}, admin={self.admin})"


DEFAULT_USERS = (
    UserSpec("alice", "alice-demo-pass", admin=True),
    UserSpec("bob", "bob-demo-pass"),
)


def parse_users(text: str) -> tuple[UserSpec, ...]:
    """Parse ``name:password[:admin],…``; the first user is the admin if none is marked.

    Raises:
        ConfigError: naming ``SESSIONWARD_DEMO_USERS`` and the accepted form.
    """
    accepts = "expected name:password[:admin],… with names of letters, digits, '_', '.', '@' or '-'"
    users: list[UserSpec] = []
    for number, entry in enumerate(text.split(","), start=1):
        name, sep, password = entry.strip().partition(":")
        admin = password.endswith(":admin")
        if admin:
            password = password[: -len(":admin")]
        if not sep or not _NAME.fullmatch(name) or not password:
            raise ConfigError(USERS_VARIABLE, f"entry {number} is not valid; {accepts}")
        if any(user.name == name for user in users):
            raise ConfigError(USERS_VARIABLE, f"user {name!r} is listed twice")
        users.append(UserSpec(name, password, admin))
    if not any(user.admin for user in users):
        users[0] = UserSpec(users[0].name, users[0].password, admin=True)
    return tuple(users)


def password_problem(user: str, password: str, current: str | None = None) -> str | None:
    """Say why ``password`` is too weak for ``user``, or ``None`` when it is acceptable.

    The rules follow ASVS 5.0 V6.2: a minimum length, no composition rules, no common or
    context-specific passwords.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        return f"use at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"use at most {MAX_PASSWORD_CHARS} characters"
    lowered = password.lower()
    if lowered in _COMMON_PASSWORDS or len(set(password)) < 3:
        return "this password is too common or too easy to guess"
    if user.lower() in lowered:
        return "the password must not contain the user name"
    if current is not None and password == current:
        return "the new password must differ from the current one"
    return None


class UserDirectory:
    """The demo's users, with hashed passwords.

    Args:
        users: The configured accounts; their passwords are hashed here and dropped.
        hasher: The Argon2 hasher; by default Argon2id with OWASP's minimum parameters
            (19 MiB, 2 iterations), about 30 ms a hash on a small machine.
    """

    def __init__(self, users: tuple[UserSpec, ...], hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self._hashes = {user.name: self._hasher.hash(user.password) for user in users}
        self._admins = frozenset(user.name for user in users if user.admin)
        # Unknown users are checked against this, so they cost as much as real ones.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    @property
    def names(self) -> list[str]:
        """The account names, sorted."""
        return sorted(self._hashes)

    def is_admin(self, name: str) -> bool:
        """Tell whether ``name`` may elevate to the admin area."""
        return name in self._admins

    def verify(self, name: str, password: str) -> bool:
        """Check a password in constant work whether or not ``name`` exists (blocking)."""
        stored = self._hashes.get(name)
        try:
            self._hasher.verify(stored or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password (blocking: it hashes)."""
        if name not in self._hashes:
            raise KeyError(name)
        self._hashes[name] = self._hasher.hash(password)
