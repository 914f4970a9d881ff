"""``chattycat accounts``: the operator's list of registered names, and reading secrets.

Accounts live in the history file next to messages and sessions. A running
server holds that file locked and reads the accounts when it starts, so the
operator edits them while the server is stopped (a running server's file
answers "in use by another process").

Secrets are never taken from the command line, where every local user can
read them in the process list: from a file (its first line), from an
environment variable, or typed on the terminal without echo.
"""

from __future__ import annotations

import os
import time

import click

from chattycat.errors import ChattyCatError
from chattycat.protocol.names import NAME_RULE, is_valid_name, name_key
from chattycat.protocol.requests import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from chattycat.server.effects import DropAccount, SaveAccount, StoredAccount, WriteBatch
from chattycat.server.passwords import hash_password
from chattycat.server.sqlite_store import SQLiteStore
from chattycat.server.store import default_history_path

__all__ = ["accounts", "read_secret"]

MEMORY_DB = ":memory:"


def read_secret(path: str | None, env: str) -> str | None:
    """The first line of file ``path``, else the variable ``env``, else None."""
    if path is not None:
        try:
            with open(path, encoding="utf-8") as file:
                return file.readline().rstrip("\r\n")
        except OSError as exc:
            raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise click.ClickException(f"cannot read {path}: not UTF-8 text") from None
    return os.environ.get(env) or None


def _check_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise click.ClickException(
            f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    return password


def _open(db: str | None) -> SQLiteStore:
    path = db if db is not None else str(default_history_path())
    if path == MEMORY_DB:
        raise click.UsageError("accounts are kept in a history file; --db :memory: has none")
    try:
        return SQLiteStore(path)
    except ChattyCatError as exc:
        raise click.ClickException(str(exc)) from None


def _write(db: str | None, write: SaveAccount | DropAccount) -> None:
    store = _open(db)
    try:
        store.apply(WriteBatch(0, (write,)))
    except ChattyCatError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


_db_option = click.option(
    "--db", "db", default=None, metavar="PATH", envvar="CHATTYCAT_DB", show_envvar=True,
    help="The server's history file. [default: in the user data dir]")


@click.group()
def accounts() -> None:
    """Registered names: add, remove, list (with the server stopped)."""


@accounts.command()
@click.argument("name")
@_db_option
@click.option("--password-file", type=click.Path(dir_okay=False), default=None,
              envvar="CHATTYCAT_PASSWORD_FILE", show_envvar=True,
              help="Read the password from this file's first line. "
                   "[default: ask on the terminal]")
def add(name: str, db: str | None, password_file: str | None) -> None:
    """Register NAME (or give it a new password)."""
    if not is_valid_name(name):
        raise click.BadParameter(NAME_RULE, param_hint="NAME")
    password = read_secret(password_file, "CHATTYCAT_PASSWORD")
    if password is None:
        password = click.prompt(f"Password for {name}", hide_input=True,
                                confirmation_prompt=True, err=True)
    record = hash_password(_check_password(password))
    _write(db, SaveAccount(StoredAccount(name_key(name), name, record, round(time.time(), 3))))
    click.echo(f"account {name} saved")


@accounts.command()
@click.argument("name")
@_db_option
def remove(name: str, db: str | None) -> None:
    """Remove the account of NAME."""
    store = _open(db)
    try:
        known = {a.name_key for a in store.accounts()}
    finally:
        store.close()
    if name_key(name) not in known:
        raise click.ClickException(f"there is no account {name}")
    _write(db, DropAccount(name_key(name)))
    click.echo(f"account {name} removed")


@accounts.command(name="list")
@_db_option
def list_accounts(db: str | None) -> None:
    """List the registered names, one a line."""
    store = _open(db)
    try:
        for account in store.accounts():
            click.echo(account.name)
    except ChattyCatError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
