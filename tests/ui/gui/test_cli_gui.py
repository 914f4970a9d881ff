"""`chattycat gui`: its options, and one-line errors when no window can be opened."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

import chattycat.ui.gui
from chattycat.cli import main


def test_gui_help_lists_the_client_options() -> None:
    result = CliRunner().invoke(main, ["gui", "--help"])
    assert result.exit_code == 0
    for flag in ("--name", "--host", "--port", "--room", "--tls", "--cafile", "--insecure"):
        assert flag in result.output


def test_gui_without_a_name_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["gui"], env={"CHATTYCAT_NAME": None})
    assert result.exit_code == 2
    assert "--name" in result.output


def test_gui_without_a_display_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform in ("win32", "darwin"):
        pytest.skip("Windows and macOS need no X display")
    result = CliRunner().invoke(main, ["gui", "--name", "alice", "--port", "1"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: cannot open a window")


def test_gui_without_tkinter_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tkinter", None)
    monkeypatch.delitem(sys.modules, "chattycat.ui.gui.app", raising=False)
    monkeypatch.delattr(chattycat.ui.gui, "app", raising=False)  # an earlier import's attribute
    result = CliRunner().invoke(main, ["gui", "--name", "alice"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "tkinter" in line and line.startswith("Error: ")
