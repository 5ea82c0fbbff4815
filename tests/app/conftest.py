"""Fixtures of the app tests; the helpers they use live in app_helpers.py."""

from __future__ import annotations

import pytest
from app_helpers import Server


@pytest.fixture
def server_factory(tmp_path):
    servers: list[Server] = []

    def start(url: str) -> Server:
        srv = Server(url, tmp_path / f"server{len(servers)}.log").start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.kill()
