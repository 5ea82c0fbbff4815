"""Password hashing and user accounts, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib

import pytest

from w2s.store.auth import (
    add_user,
    authenticate,
    hash_password,
    list_users,
    set_active,
    set_password,
    verify_password,
)


def test_hash_is_salted_scrypt_and_verifies():
    h1, h2 = hash_password("correct horse"), hash_password("correct horse")
    assert h1 != h2 and h1.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", h1) and verify_password("correct horse", h2)
    assert not verify_password("correct horsE", h1) and not verify_password("", h1)
    # the stored key is scrypt of the password with the stored salt (checked with hashlib directly)
    _, n, r, p, salt, key = h1.split("$")
    expected = hashlib.scrypt(
        b"correct horse", salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    assert base64.b64decode(key) == expected


@pytest.mark.parametrize(
    "stored", ["", "plain", "pbkdf2$1$2$3$x$y", "scrypt$x$8$1$AA==$AA==", "scrypt$16384$8$1$!!$!!"]
)
def test_malformed_hash_never_verifies(stored):
    assert verify_password("anything", stored) is False


def test_users_and_authentication(store_url):
    alice = add_user("alice", "admin", "pw-a", url=store_url)
    add_user("bob", "annotator", "pw-b", url=store_url)
    assert alice.id is not None and alice.password_hash != "pw-a"
    assert authenticate("alice", "pw-a", url=store_url).name == "alice"
    assert authenticate("alice", "pw-b", url=store_url) is None
    assert authenticate("nobody", "pw-a", url=store_url) is None
    assert [(u.name, u.role) for u in list_users(store_url)] == [("alice", "admin"), ("bob", "annotator")]

    with pytest.raises(ValueError, match="already exists"):
        add_user("alice", "annotator", "x", url=store_url)
    with pytest.raises(ValueError, match="unknown role"):
        add_user("carol", "owner", "x", url=store_url)
    with pytest.raises(ValueError, match="empty password"):
        add_user("carol", "annotator", "", url=store_url)
    with pytest.raises(ValueError, match="invalid user name"):
        add_user("carol smith", "annotator", "x", url=store_url)

    set_password("bob", "new", url=store_url)
    assert authenticate("bob", "pw-b", url=store_url) is None and authenticate("bob", "new", url=store_url)
    set_active("bob", False, url=store_url)
    assert authenticate("bob", "new", url=store_url) is None
    with pytest.raises(ValueError, match="no user"):
        set_password("zed", "x", url=store_url)
