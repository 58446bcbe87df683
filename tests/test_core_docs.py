"""Docs stay in sync with the code: every hook and every built-in plugin is documented."""
from __future__ import annotations

from pathlib import Path

from permaplug.core import hookspecs
from permaplug.core.plugins import build_registry

ROOT = Path(__file__).resolve().parents[1]


def test_every_hook_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for hook in hookspecs.HOOKS:
        assert f"`{hook}(register)`" in readme, hook


def test_readme_starts_with_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "permaplug run --source era5land --model tcn" in commands[0]
    assert "pytest" in commands[1]


def test_every_builtin_plugin_is_documented():
    docs = "\n".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    reg = build_registry()
    missing = [f"{p.kind}:{p.name}" for p in reg.all() if p.builtin and f"`{p.name}`" not in docs]
    assert not missing, f"built-in plugins missing from docs/*.md: {missing}"
