"""Nothing below ``cli.py`` prints: the client and the front ends report, the CLI writes.

The terminal UI draws its own screen through the tty writer, and the
scripted client writes its event lines to the stream it is given; neither
reaches for ``print`` or the process's own ``sys.stdout``/``sys.stderr``.
(The interactive client used to print its start-up failure to stderr.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "chattycat"
LAYERS = sorted([*(PACKAGE / "client").rglob("*.py"), *(PACKAGE / "ui").rglob("*.py")])


def stray_output(tree: ast.AST) -> list[str]:
    """``print(...)`` calls and ``sys.stdout``/``sys.stderr`` uses, with their lines."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "print":
            found.append(f"line {node.lineno}: print()")
        elif isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") \
                and isinstance(node.value, ast.Name) and node.value.id == "sys":
            found.append(f"line {node.lineno}: sys.{node.attr}")
    return found


@pytest.mark.parametrize("path", LAYERS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_module_writes_nothing_to_the_process_streams(path: Path) -> None:
    assert stray_output(ast.parse(path.read_text(), str(path))) == []


def test_the_check_sees_both_kinds() -> None:
    tree = ast.parse("import sys\nprint('x')\nsys.stderr.write('y')\n")
    assert stray_output(tree) == ["line 2: print()", "line 3: sys.stderr"]
