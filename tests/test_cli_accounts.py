"""``chattycat accounts`` and the password options of serve/join, through CliRunner and
real subprocesses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from chattycat.cli import main
from chattycat.server.passwords import verify_password
from chattycat.server.sqlite_store import SQLiteStore
from tests.conftest import StartServer, chattycat_command, child_env

PASSWORD = "correct horse battery"
TIMEOUT_S = 60


def invoke(*args: str, input: str = "", env: dict[str, str] | None = None
           ) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "history.sqlite3")


@pytest.fixture
def secret(tmp_path: Path) -> str:
    path = tmp_path / "pw"
    path.write_text(PASSWORD + "\n")
    return str(path)


def test_add_list_and_remove(db: str, secret: str) -> None:
    assert invoke("accounts", "add", "Alice", "--db", db, "--password-file", secret)[0] == 0
    assert invoke("accounts", "add", "bob", "--db", db, "--password-file", secret)[0] == 0
    assert invoke("accounts", "list", "--db", db)[1] == "Alice\nbob\n"
    assert invoke("accounts", "remove", "alice", "--db", db)[0] == 0
    assert invoke("accounts", "list", "--db", db)[1] == "bob\n"


def test_the_password_is_stored_as_an_scrypt_record(db: str, secret: str) -> None:
    invoke("accounts", "add", "alice", "--db", db, "--password-file", secret)
    store = SQLiteStore(db)
    (account,) = store.accounts()
    store.close()
    assert account.record.startswith("scrypt$") and PASSWORD not in account.record
    assert verify_password(PASSWORD, account.record)


def test_add_asks_on_the_terminal_twice_without_echo(db: str) -> None:
    code, stdout, stderr = invoke("accounts", "add", "alice", "--db", db,
                                  input=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0, stderr
    assert PASSWORD not in stdout + stderr


def test_add_takes_the_password_from_the_environment(db: str) -> None:
    code, _, _ = invoke("accounts", "add", "alice", "--db", db,
                        env={"CHATTYCAT_PASSWORD": PASSWORD})
    assert code == 0


@pytest.mark.parametrize("args, message", [
    (["add", "b@d"], "Invalid value for NAME"),
    (["remove", "nobody"], "Error: there is no account nobody"),
    (["list", "--db", ":memory:"], "--db :memory: has none"),
])
def test_mistakes_are_one_line_errors(db: str, args: list[str], message: str) -> None:
    extra = [] if "--db" in args else ["--db", db]
    code, _, stderr = invoke("accounts", *args, *extra, env={"CHATTYCAT_PASSWORD": PASSWORD})
    assert code != 0 and message in stderr and "Traceback" not in stderr


def test_a_short_password_is_refused(db: str) -> None:
    code, _, stderr = invoke("accounts", "add", "alice", "--db", db,
                             env={"CHATTYCAT_PASSWORD": "short"})
    assert code == 1 and stderr == "Error: a password has 8 to 1024 characters\n"


def test_accounts_of_a_file_a_server_holds_is_a_one_line_error(
    server_process: StartServer, tmp_path: Path,
) -> None:
    proc = server_process()
    done = subprocess.run(chattycat_command("accounts", "list", "--db", str(proc.db)),
                          capture_output=True, text=True, env=child_env(), timeout=TIMEOUT_S,
                          check=False)
    assert done.returncode == 1 and "in use by another process" in done.stderr
    assert "Traceback" not in done.stderr


def test_real_accounts_command_then_scripted_join_with_the_password(
    server_process: StartServer, tmp_path: Path, secret: str,
) -> None:
    db = tmp_path / "history.sqlite3"
    added = subprocess.run(
        chattycat_command("accounts", "add", "alice", "--db", str(db), "--password-file", secret),
        capture_output=True, text=True, env=child_env(), timeout=TIMEOUT_S, check=False)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run(chattycat_command("accounts", "list", "--db", str(db)),
                            capture_output=True, text=True, env=child_env(), timeout=TIMEOUT_S,
                            check=False)
    assert listed.stdout == "alice\n"
    proc = server_process("--accounts", "required", "--flood-rate", "0")
    join = chattycat_command("join", "--name", "alice", "--port", str(proc.port))
    ok = subprocess.run([*join, "--password-file", secret], input="hello\n",
                        capture_output=True, text=True, env=child_env(), timeout=TIMEOUT_S,
                        check=False)
    assert ok.returncode == 0, ok.stderr
    assert "hello" in ok.stdout
    bad = subprocess.run(join, input="hello\n", capture_output=True, text=True,
                         env=child_env({"CHATTYCAT_PASSWORD": "wrong wrong wrong"}),
                         timeout=TIMEOUT_S, check=False)
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "wrong name or password" in bad.stderr
    assert PASSWORD not in proc.log


def test_serve_and_join_list_the_password_options() -> None:
    assert "--server-password-file" in invoke("serve", "--help")[1]
    assert "--accounts" in invoke("serve", "--help")[1]
    join_help = invoke("join", "--help")[1]
    assert "--password-file" in join_help and "CHATTYCAT_PASSWORD" in join_help
