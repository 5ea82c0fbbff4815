"""Users and passwords for the annotation app.

Passwords are hashed with scrypt from the standard library (`hashlib.scrypt`): it is memory-hard, so
guessing on GPUs costs far more than with PBKDF2, and it needs no extra dependency (bcrypt/argon2 would).
Stored form: ``scrypt$n$r$p$<salt b64>$<hash b64>``, so the cost can be raised later without breaking
existing hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache

from sqlmodel import select

from w2s.store.db import User, session_scope

ROLES = ("annotator", "admin")
SCRYPT_N, SCRYPT_R, SCRYPT_P, SALT_BYTES, KEY_BYTES = 2**14, 8, 1, 16, 32


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=2**26)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored`; False for a wrong password or a malformed hash."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(8))


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"invalid user name {name!r}: it must be non-empty without spaces")
    return name


def add_user(name: str, role: str, password: str, url: str | None = None) -> User:
    """Create a user; raises ValueError for an unknown role, an empty password or a name already taken."""
    name = _check_name(name)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    if not password:
        raise ValueError("empty password")
    with session_scope(url) as s:
        if s.exec(select(User).where(User.name == name)).first() is not None:
            raise ValueError(f"user {name!r} already exists")
        user = User(name=name, role=role, password_hash=hash_password(password))
        s.add(user)
        s.flush()
        s.refresh(user)
    return user


def set_password(name: str, password: str, url: str | None = None) -> User:
    if not password:
        raise ValueError("empty password")
    with session_scope(url) as s:
        user = s.exec(select(User).where(User.name == name)).first()
        if user is None:
            raise ValueError(f"no user {name!r}")
        user.password_hash = hash_password(password)
        s.add(user)
    return user


def set_active(name: str, active: bool, url: str | None = None) -> User:
    with session_scope(url) as s:
        user = s.exec(select(User).where(User.name == name)).first()
        if user is None:
            raise ValueError(f"no user {name!r}")
        user.active = active
        s.add(user)
    return user


def authenticate(name: str, password: str, url: str | None = None) -> User | None:
    """The user when the name and password match an active account, else None."""
    with session_scope(url) as s:
        user = s.exec(select(User).where(User.name == name)).first()
    if user is None:
        verify_password(password, _dummy_hash())  # same work either way: no user-name probing by timing
        return None
    if not verify_password(password, user.password_hash) or not user.active:
        return None
    return user


def list_users(url: str | None = None) -> list[User]:
    with session_scope(url) as s:
        return list(s.exec(select(User).order_by(User.name)).all())
