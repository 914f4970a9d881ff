"""The package's layers, read from its own imports: the arrows go one way.

    cli -> ui -> client -> protocol, net
    cli -> server -> protocol, net

``ui/term`` and ``ui/gui`` are front ends over the shared ``ui`` modules and
never import each other; ``protocol`` and the state machines are sans-IO, so
only ``net`` may import ``socket``, ``selectors`` or ``ssl``. Every import
counts, including those inside functions and under ``TYPE_CHECKING``: a
module that needs to reach upward means the design is wrong.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chattycat"

# What each layer may import besides itself. The shared ui modules sit below
# the two front ends that use them.
ALLOWED: dict[str, set[str]] = {
    "base": set(),  # errors, _version: imported by everyone, import no one
    "net": {"base"},
    "protocol": {"base"},
    "server": {"base", "net", "protocol"},
    "client": {"base", "net", "protocol"},
    "ui": {"base", "net", "protocol", "client"},
    "ui.term": {"base", "net", "protocol", "client", "ui"},
    "ui.gui": {"base", "net", "protocol", "client", "ui"},
    "top": {"base", "net", "protocol", "server", "client", "ui", "ui.term", "ui.gui", "top"},
}
SOCKET_MODULES = {"socket", "selectors", "ssl"}


def layer_of(module: str) -> str:
    """``chattycat.ui.term.app`` -> ``ui.term``; the package's own top files are ``top``."""
    parts = module.split(".")[1:]
    if parts[:2] in (["ui", "term"], ["ui", "gui"]):
        return ".".join(parts[:2])
    if parts and parts[0] in ("net", "protocol", "server", "client", "ui"):
        return parts[0]
    if parts and parts[0] in ("errors", "_version"):
        return "base"
    return "top"  # chattycat, cli, __main__


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``path``, absolute or relative."""
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from chattycat import gui` imports a module
                if target == "chattycat" or target.startswith("chattycat."):
                    yield node.lineno, f"{target}.{alias.name}"


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def existing_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path: Path) -> None:
    here = module_name(path)
    mine = layer_of(here)
    wrong = []
    for line, target in imports(path):
        if not target.startswith("chattycat") or not existing_module(target):
            continue
        theirs = layer_of(target)
        if theirs != mine and theirs not in ALLOWED[mine]:
            wrong.append(f"line {line}: {mine} imports {target} ({theirs})")
    assert not wrong, f"{here} reaches upward or sideways: " + "; ".join(wrong)


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_net_touches_sockets(path: Path) -> None:
    here = module_name(path)
    if layer_of(here) == "net":
        return
    touching = [f"line {line}: {target}" for line, target in imports(path)
                if target.split(".")[0] in SOCKET_MODULES]
    assert not touching, f"{here} imports socket-level modules: " + "; ".join(touching)


def test_protocol_and_the_state_machines_read_no_clock() -> None:
    sans_io = [*sorted((PACKAGE / "protocol").glob("*.py")),
               PACKAGE / "server" / "state.py", PACKAGE / "server" / "ledger.py",
               PACKAGE / "server" / "output.py", PACKAGE / "client" / "session.py"]
    for path in sans_io:
        clocks = [f"line {line}: {target}" for line, target in imports(path)
                  if target.split(".")[0] in {"time", "datetime", "sqlite3", "threading"}]
        assert not clocks, f"{module_name(path)} is sans-IO but imports " + "; ".join(clocks)


def test_the_layer_map_knows_every_package() -> None:
    packages = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert {layer_of(p) for p in packages} <= set(ALLOWED)
    assert {"chattycat.net", "chattycat.protocol", "chattycat.server", "chattycat.client",
            "chattycat.ui", "chattycat.ui.term", "chattycat.ui.gui"} <= packages
