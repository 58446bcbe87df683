"""``permaplug fetch <source>``: download a provider's files with a source plugin's ``fetch``.

The sub-commands are built from the registry: every registered source that overrides
:meth:`permaplug.Source.fetch` gets one, its options made from the method's signature (see
:meth:`permaplug.Source.fetch`): ``out`` is ``--out``, each ``Annotated[T, "help"]`` keyword
parameter an option. The registry is read only when a sub-command is listed or invoked, so
``permaplug --help`` stays fast.
"""
from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import click

_LISTS = (list, tuple, Sequence, typing.Sequence)


def _split(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None or empty -> None."""
    items = [t.strip() for t in text.split(",") if t.strip()] if text else []
    return items or None


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``T | None`` -> ``(T, True)``; anything else -> ``(hint, False)``."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(hint)):
            return args[0], True
    return hint, False


def _option(source: str, name: str, param: inspect.Parameter, hint: Any) -> click.Option | None:
    """The click option of one ``fetch`` parameter, or None when it is not exposed (no
    ``Annotated[..., "help"]``). TypeError names an annotation the CLI cannot express."""
    if typing.get_origin(hint) is not Annotated:
        return None
    base, *meta = typing.get_args(hint)
    help_text = next((m for m in meta if isinstance(m, str)), "")
    base, _optional = _unwrap_optional(base)
    flag = "--" + name.replace("_", "-")
    required = param.default is inspect.Parameter.empty
    default = None if required else param.default
    origin = typing.get_origin(base)
    kw: dict[str, Any] = {"help": help_text, "show_default": default is not None}
    if base is bool:
        return click.Option([f"{flag}/--no-{name.replace('_', '-')}", name], default=bool(default),
                            **kw)
    if origin is Literal:
        kw["type"] = click.Choice([str(a) for a in typing.get_args(base)])
    elif base in (str, int, float):
        kw["type"] = base
    elif base in _LISTS or origin in _LISTS:
        kw["type"] = str
        kw["metavar"] = "A,B,..."
        if default is not None:
            default = ",".join(str(d) for d in default)
        kw["callback"] = lambda _ctx, _param, value: _split(value)
    else:
        raise TypeError(f"source {source!r}: fetch parameter {name!r} has annotation {base!r}; "
                        "the CLI supports str, int, float, bool, Literal and list[str]")
    if not required:  # click tells a None default from no default
        kw["default"] = default
    return click.Option([flag, name], required=required, **kw)


def fetch_command(cls: type) -> click.Command:
    """The ``permaplug fetch <name>`` sub-command of source class ``cls``."""
    func = cls.fetch
    hints = typing.get_type_hints(func, include_extras=True)
    params = list(inspect.signature(func).parameters.items())
    if not params:
        raise TypeError(f"source {cls.name!r}: fetch(out, ...) needs an output folder parameter")
    out_name = params[0][0]
    options = [click.Option(["--out", out_name], required=True,
                            type=click.Path(file_okay=False), help="Output folder.")]
    for name, param in params[1:]:
        if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        opt = _option(cls.name, name, param, hints.get(name))
        if opt is not None:
            options.append(opt)
    if "progress" in dict(params):
        options.append(QUIET)
    # the first paragraph of the docstring (the rest is for developers)
    doc = (inspect.getdoc(func) or f"Download {cls.name} data.").split("\n\n")[0]

    def run(**kwargs: Any) -> None:
        from permaplug.core.atomic import check_writable

        out = check_writable(Path(kwargs.pop(out_name)))  # before any download
        if "quiet" in kwargs:
            kwargs["progress"] = not kwargs.pop("quiet")
        files = cls.fetch(out, **kwargs)
        click.echo(f"{len(files)} file(s) in {out}")

    return click.Command(cls.name, callback=run, params=options, help=doc,
                         short_help=doc.splitlines()[0])


QUIET = click.Option(["--quiet", "quiet"], is_flag=True, help="No progress bars.")


def _can_fetch(reg: Any, name: str) -> bool:
    """Whether source ``name`` can download (False for a name two plugins claim: using it is
    an error that ``permaplug plugins`` explains)."""
    from permaplug.core.errors import PermaplugError

    try:
        return bool(reg.get("source", name).can_fetch())
    except PermaplugError:
        return False


class FetchGroup(click.Group):
    """A group whose commands are the registered sources that can download."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from permaplug.core.plugins import get_registry

        reg = get_registry()
        return [name for name in reg.names("source") if _can_fetch(reg, name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from permaplug.core.plugins import get_registry

        reg = get_registry()
        if cmd_name not in reg.names("source"):
            return None
        cls = reg.get("source", cmd_name)
        if not cls.can_fetch():
            able = ", ".join(self.list_commands(ctx)) or "none"
            raise click.UsageError(f"source {cmd_name!r} has no download support "
                                   f"(sources that can download: {able})", ctx)
        return fetch_command(cls)


@click.group(name="fetch", cls=FetchGroup)
def fetch() -> None:
    """Download provider data (credentials from the providers' standard configuration).

    One sub-command per source plugin that can download (listed below; a third party's
    source with a fetch classmethod adds its own).
    """
