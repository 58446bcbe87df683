"""The command line's surface: version, help, one-line errors with the right exit codes."""
from __future__ import annotations

from click.testing import CliRunner

import permaplug
from permaplug.cli import cli


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert permaplug.__version__ in result.output


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["-h"])
    assert result.exit_code == 0
    for cmd in ("plugins", "catalog", "fetch", "demo", "data", "correct", "run", "project",
                "explain", "report"):
        assert cmd in result.output


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["trian"])
    assert result.exit_code == 2
    assert "No such command 'trian'" in result.output
