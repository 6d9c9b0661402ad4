"""The ``cxasset`` command line: one command per pipeline step, ``--json`` on every one.

One module per stage registers its commands on the shared typer ``app`` (:mod:`cxasset.cli._app`
holds the error policy, progress and JSON output); they are imported in pipeline order, which is
the order of ``cxasset --help``.
"""

from __future__ import annotations

import importlib

from cxasset.cli._app import app

for _stage in ("data", "models", "growth", "scenarios", "report", "demo"):
    importlib.import_module(f"cxasset.cli.{_stage}")

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - entry point
    app()
