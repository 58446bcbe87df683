"""Download code of the ``cmip`` source: CMIP5/CMIP6 monthly files from ESGF (search API over
HTTPS, no credentials). :meth:`CMIPSource.fetch
<permaplug.plugins.sources.cmip.CMIPSource.fetch>` is the entry point.

The REQUEST (search parameters, a plain dict built by :func:`esgf_query`) is separate from the
CLIENT that executes it (:class:`HttpESGFClient`); tests pass fake clients. Files are written
atomically and a file already present is not downloaded again.
"""
from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from permaplug.core import progress as bars
from permaplug.core.atomic import atomic_path
from permaplug.core.errors import ConfigError, FetchError

ESGF_SEARCH = "https://esgf-node.ornl.gov/esg-search/search"
CMIP_VARIABLES = ("tas", "ts", "pr", "prsn", "rlds", "rsds", "hfls", "hfss", "mrso", "mrsos")
TABLES = {"mrso": "Lmon", "mrsos": "Lmon", "sftlf": "fx"}


def esgf_query(project: str, model: str, experiment: str, variable: str,
               member: str) -> dict[str, str]:
    """ESGF search parameters for the files of one model/experiment/variable/member."""
    table = TABLES.get(variable, "Amon")
    common = {"type": "File", "latest": "true", "format": "application/solr+json",
              "limit": "500", "distrib": "true"}
    if project.upper() == "CMIP5":
        q = {"project": "CMIP5", "model": model, "experiment": experiment, "variable": variable,
             "cmor_table": table, "ensemble": "r0i0p0" if table == "fx" else member}
        if table != "fx":
            q["time_frequency"] = "mon"
    elif project.upper() == "CMIP6":
        q = {"project": "CMIP6", "source_id": model, "experiment_id": experiment,
             "variable_id": variable, "table_id": table, "member_id": member}
    else:
        raise ConfigError(f"--project {project!r}: use CMIP5 or CMIP6")
    return {**q, **common}


class ESGFClient(Protocol):
    def search(self, params: dict[str, str]) -> list[dict[str, Any]]: ...
    def download(self, url: str, target: Path) -> None: ...


class HttpESGFClient:
    """ESGF search API and HTTPS downloads with the standard library (no credentials sent)."""

    def __init__(self, index: str = ESGF_SEARCH, timeout: float = 60.0) -> None:
        self.index, self.timeout = index, timeout

    def search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        url = f"{self.index}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                return json.load(resp)["response"]["docs"]
        except Exception as exc:
            raise FetchError(f"ESGF search at {self.index} failed ({type(exc).__name__}: "
                             f"{exc})") from exc

    def download(self, url: str, target: Path) -> None:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp, \
                    open(target, "wb") as fh:
                while chunk := resp.read(1 << 20):
                    fh.write(chunk)
        except Exception as exc:
            raise FetchError(f"download of {url} failed ({type(exc).__name__}: {exc})") from exc


def _http_url(doc: dict[str, Any]) -> str | None:
    for u in doc.get("url", []):
        parts = str(u).split("|")
        if len(parts) >= 3 and parts[2] == "HTTPServer":
            return parts[0]
    return None


def fetch_esgf(out: Path, project: str = "CMIP5", model: str = "IPSL-CM5A-MR",
               experiments: Sequence[str] = (),
               variables: Sequence[str] = CMIP_VARIABLES, member: str = "r1i1p1",
               land_fraction: bool = True, client: ESGFClient | None = None,
               progress: bool = True) -> list[Path]:
    """Search ESGF and download each file (one copy per file name) into ``out``.

    ``experiments``: ``historical`` and the scenario experiments to download (scenario names
    are data: the user names them, see docs/data-sources.md)."""
    if not experiments:
        raise FetchError("name the experiments to download (--experiments historical,<scenario>"
                         ",...; see docs/data-sources.md)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    client = client or HttpESGFClient()
    queries = [esgf_query(project, model, e, v, member) for e in experiments for v in variables]
    if land_fraction:
        queries.append(esgf_query(project, model, "historical", "sftlf", member))
    files: dict[str, str] = {}
    for q in queries:
        for doc in client.search(q):
            name = str(doc.get("title", ""))
            url = _http_url(doc)
            if name.endswith(".nc") and url and name not in files:
                files[name] = url
    if not files:
        raise FetchError(f"ESGF found no {project} {model} {member} files for "
                         f"{', '.join(experiments)}")
    written = []
    for name, url in tqdm(sorted(files.items()), desc="ESGF", disable=bars.disabled(progress)):
        target = out / name
        if not target.exists():
            with atomic_path(target) as tmp:
                client.download(url, tmp)
        written.append(target)
    return written


__all__ = ["CMIP_VARIABLES", "ESGF_SEARCH", "HttpESGFClient", "esgf_query", "fetch_esgf"]
