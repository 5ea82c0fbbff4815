"""`w2s users ...`: accounts of the annotation app."""

from __future__ import annotations

import sys

import typer

from w2s.store import auth

users_app = typer.Typer(
    help="Manage annotator and admin accounts of the annotation app.", no_args_is_help=True
)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _fail(e: ValueError) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(1)


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="Login name (no spaces)."),
    role: str = typer.Option("annotator", "--role", "-r", help="annotator or admin."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create a user; the password is asked for (twice) unless `--password-stdin`."""
    if role not in auth.ROLES:
        raise typer.BadParameter(f"expected one of {', '.join(auth.ROLES)}", param_hint="--role")
    try:
        user = auth.add_user(name, role, _read_password(password_stdin))
    except ValueError as e:
        _fail(e)
    typer.echo(f"added {user.role} {user.name!r}")


@users_app.command("passwd")
def passwd(
    name: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Set a user's password."""
    try:
        auth.set_password(name, _read_password(password_stdin))
    except ValueError as e:
        _fail(e)
    typer.echo(f"password of {name!r} changed")


@users_app.command("deactivate")
def deactivate(name: str, undo: bool = typer.Option(False, "--undo", help="Reactivate instead.")) -> None:
    """Stop a user from logging in (their annotations stay)."""
    try:
        auth.set_active(name, undo)
    except ValueError as e:
        _fail(e)
    typer.echo(f"{name!r} {'reactivated' if undo else 'deactivated'}")


@users_app.command("list")
def list_cmd(role: str | None = typer.Option(None, "--role", "-r")) -> None:
    """Users with their role and whether they may log in."""
    users = [u for u in auth.list_users() if role is None or u.role == role]
    if not users:
        typer.echo("no users")
    for u in users:
        typer.echo(
            f"{u.name}\t{u.role}\t{'active' if u.active else 'inactive'}\t{u.created_at:%Y-%m-%d %H:%M}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
