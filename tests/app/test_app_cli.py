"""`w2s serve` is registered through the entry point and documents its options.

Serving itself is exercised by the API and browser tests, which start `w2s serve` as a subprocess."""

from __future__ import annotations

from typer.testing import CliRunner

from w2s.cli import app


def test_serve_is_registered_with_its_options():
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--db", "--host", "--port", "--strong", "--tree-config"):
        assert option in result.output
