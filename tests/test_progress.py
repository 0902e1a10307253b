"""Progress bars: the terminal when SRLIB_PROGRESS=terminal, tqdm's default otherwise."""

from __future__ import annotations

import io
import sys

import pytest

from srlib._progress import progress_bar


def test_terminal_progress_goes_to_the_original_stderr(monkeypatch, capsys):
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", terminal)
    monkeypatch.setenv("SRLIB_PROGRESS", "terminal")
    for _ in progress_bar(range(3), desc="to the terminal"):
        pass
    assert "to the terminal" in terminal.getvalue()
    assert "to the terminal" not in capsys.readouterr().err


def test_default_progress_goes_to_stderr(monkeypatch, capsys):
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", terminal)
    monkeypatch.delenv("SRLIB_PROGRESS", raising=False)
    for _ in progress_bar(range(3), desc="to stderr"):
        pass
    assert "to stderr" in capsys.readouterr().err
    assert terminal.getvalue() == ""


def test_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv("SRLIB_PROGRESS", "loud")
    with pytest.raises(ValueError, match="SRLIB_PROGRESS must be 'auto' or 'terminal'"):
        progress_bar(range(3))
