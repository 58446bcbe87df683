"""Domain exceptions. The library raises these; the CLI turns them into one-line errors."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class PermaplugError(Exception):
    """Base class of every error permaplug raises on purpose (exit code 1 in the CLI)."""


class PluginError(PermaplugError):
    """A plugin could not be loaded, or two plugins claim the same name."""


class UnknownPluginError(PermaplugError):
    """A source, corrector, model or explainer name that no plugin registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        msg = f"Unknown {kind}: {name!r}"
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        msg += f"; available: {', '.join(known) if known else 'none'}"
        if hint:
            msg += f". {hint}"
        super().__init__(msg)
        self.kind, self.name, self.known = kind, name, known


class CatalogError(PermaplugError):
    """A catalog that cannot be parsed, names an unknown plugin, or points outside its folder."""


class DataError(PermaplugError):
    """Input data that break the canonical schema: missing variables, wrong units, gaps..."""


class ConfigError(PermaplugError):
    """An invalid option or hyper-parameter."""


class FetchError(PermaplugError):
    """A download that cannot start (missing credentials, optional dependency not installed)."""


class NotAvailableError(PermaplugError):
    """A command or capability that this version of permaplug does not provide yet."""


class VariableConflictError(PluginError):
    """A variable declared with different units by two sources or features (names both)."""


class FeatureError(ConfigError):
    """A requested input feature that no source or derived feature provides, or whose inputs
    no source provides."""
