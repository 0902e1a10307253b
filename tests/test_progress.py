"""Progress bars: the terminal when SRLIB_PROGRESS=terminal, tqdm's default otherwise."""

from __future__ import annotations

import io
import os
import sys

import pytest

from srlib import _progress
from srlib._progress import progress_bar


class _KernelStderr(io.StringIO):
    """Like a Jupyter kernel's sys.stderr: text goes to the notebook, fileno() to the terminal."""

    def __init__(self, fd):
        super().__init__()
        self.fd = fd

    def fileno(self):
        return self.fd


def test_terminal_progress_goes_to_the_descriptor_behind_stderr(monkeypatch):
    read, write = os.pipe()
    notebook = _KernelStderr(write)
    monkeypatch.setattr(sys, "stderr", notebook)
    monkeypatch.setenv("SRLIB_PROGRESS", "terminal")
    for _ in progress_bar(range(3), desc="to the terminal"):
        pass
    _progress._terminals.pop(write).close()
    os.close(write)
    with os.fdopen(read) as terminal:
        assert "to the terminal" in terminal.read()
    assert "to the terminal" not in notebook.getvalue()


def test_terminal_progress_without_a_descriptor_is_not_shown(monkeypatch):
    notebook = io.StringIO()  # fileno() raises
    monkeypatch.setattr(sys, "stderr", notebook)
    monkeypatch.setenv("SRLIB_PROGRESS", "terminal")
    for _ in progress_bar(range(3), desc="nowhere"):
        pass
    assert notebook.getvalue() == ""


def test_default_progress_goes_to_stderr_outside_a_kernel(monkeypatch):
    notebook = _KernelStderr(-1)
    monkeypatch.setattr(sys, "stderr", notebook)
    monkeypatch.delenv("SRLIB_PROGRESS", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    for _ in progress_bar(range(3), desc="to stderr"):
        pass
    assert "to stderr" in notebook.getvalue()


def test_default_progress_in_a_kernel_stays_off_the_page(monkeypatch):
    """A notebook run by papermill gets no bar in its output (the rendered page)."""
    read, write = os.pipe()
    notebook = _KernelStderr(write)
    monkeypatch.setattr(sys, "stderr", notebook)
    monkeypatch.delenv("SRLIB_PROGRESS", raising=False)
    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # any module: "inside a kernel"
    for _ in progress_bar(range(3), desc="off the page"):
        pass
    _progress._terminals.pop(write).close()
    os.close(write)
    with os.fdopen(read) as terminal:
        assert "off the page" in terminal.read()
    assert notebook.getvalue() == ""
    monkeypatch.setenv("SRLIB_PROGRESS", "notebook")
    for _ in progress_bar(range(3), desc="on the page"):
        pass
    assert "on the page" in notebook.getvalue()


def test_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv("SRLIB_PROGRESS", "loud")
    with pytest.raises(ValueError, match="SRLIB_PROGRESS must be 'auto', 'terminal' or"):
        progress_bar(range(3))
