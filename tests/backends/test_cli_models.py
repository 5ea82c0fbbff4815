"""`w2s models` is documented; `serve` itself runs as a subprocess in test_openai_server.py."""

from typer.testing import CliRunner

from w2s.cli import app


def test_models_help_lists_commands():
    res = CliRunner().invoke(app, ["models", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for command in ("fetch", "list", "serve"):
        assert command in res.output


def test_serve_help_documents_fault_injection():
    res = CliRunner().invoke(app, ["models", "serve", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--fail-every" in res.output and "--port" in res.output


def test_serve_unknown_backend_fails_cleanly():
    res = CliRunner().invoke(app, ["models", "serve", "nosuch:model", "--port", "1"])
    assert res.exit_code != 0 and "unknown backend" in str(res.exception)
