"""``interactvlm bench check``: the deterministic ``bench … --json`` contract figures against their targets and
against the values recorded in the repository (``contract_figures.json`` next to this module).

Only figures that do not depend on the machine's speed are kept: agreements, IoUs, errors in cm and mm, output
differences and equalities — never a time or a speed-up. Each entry names its bench, key, target (``"<= 5"``,
``">= 0.95"``, ``"== true"``, or a comparison with another key of the same bench, ``"< other_key"``; ``null`` where
no issue set one), the value recorded at the last deliberate change, the tolerance of that comparison and where
the target comes from. Every bench runs once, in this process, on one torch thread (fixed seeds inside the
benches), in the mode the file's ``runs`` gives; the fast form (``--fast``, what ``make test`` runs) runs only
the benches marked ``fast``.

Per figure the status is ``ok``; ``missed`` (the target is not met); ``moved`` (the target is met but the value
left the recorded one by more than the tolerance: a generator, model or fitting change moved a contract figure,
so say so in the same commit and record it with ``--update``); or ``unavailable`` (the bench reported null,
e.g. MediaPipe is not installed; not a failure). ``--update`` rewrites the recorded values, never the targets.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import operator
import sys
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path

from interactvlm_ros.benchmarks import BENCHES
from interactvlm_ros.files.atomic import atomic_write_bytes

CONTRACT_FILE = Path(__file__).with_name("contract_figures.json")
OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}


class ContractError(ValueError):
    """The contract file is malformed or names a bench or key that does not exist; the message says which."""


@dataclass
class Figure:
    """One contract figure: ``bench``/``key``, its ``target`` (or None), the ``recorded`` value and ``tolerance``."""

    bench: str
    key: str
    target: str | None
    recorded: float | bool | None
    tolerance: float
    source: str

    @property
    def name(self) -> str:
        return f"{self.bench}.{self.key}"


def load_contract(path: str | Path | None = None) -> tuple[dict[str, dict], list[Figure]]:
    """The ``runs`` (bench -> ``{"quick": bool, "fast": bool}``) and figures of ``path`` (default the repository's)."""
    path = Path(path) if path is not None else CONTRACT_FILE
    try:
        data = json.loads(path.read_text())
        runs = data["runs"]
        figures = [Figure(f["bench"], f["key"], f["target"], f["recorded"], float(f["tolerance"]), f["source"])
                   for f in data["figures"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ContractError(f"{path}: unreadable contract file ({type(exc).__name__}: {exc})") from None
    for fig in figures:
        if fig.bench not in BENCHES or fig.bench not in runs:
            raise ContractError(f"{path}: {fig.name}: bench {fig.bench!r} is not a bench with a run mode")
        if fig.target is not None:
            _split_target(fig)
    return runs, figures


def _split_target(fig: Figure) -> tuple[str, str]:
    op, _, rhs = (fig.target or "").partition(" ")
    if op not in OPERATORS or not rhs.strip():
        raise ContractError(f"{fig.name}: target {fig.target!r} is not '<op> <number|true|false|key>' "
                            f"with op in {sorted(OPERATORS)}")
    return op, rhs.strip()


def target_met(fig: Figure, result: dict) -> bool:
    """Whether ``result[fig.key]`` meets ``fig.target`` (the right-hand side may be another key of ``result``)."""
    op, rhs = _split_target(fig)
    if rhs in result:
        bound = result[rhs]
    else:
        try:
            bound = json.loads(rhs)
        except json.JSONDecodeError:
            raise ContractError(f"{fig.name}: target {fig.target!r} names no key of bench {fig.bench}") from None
    if bound is None:
        return False
    return bool(OPERATORS[op](result[fig.key], bound))


def measure(cfg, benches: list[str], runs: dict[str, dict], progress=None) -> dict[str, dict]:
    """Run each bench once in this process on one torch thread; their own printing goes to stderr."""
    import torch

    results = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name in benches:
            if progress:
                progress(f"bench check: {name} ({'quick' if runs[name]['quick'] else 'full'})")
            module, func = BENCHES[name].split(":")
            with contextlib.redirect_stdout(sys.stderr):
                results[name] = getattr(importlib.import_module(module), func)(
                    cfg, Namespace(quick=bool(runs[name]["quick"])))
    finally:
        torch.set_num_threads(threads)
    return results


def compare(figures: list[Figure], results: dict[str, dict]) -> list[dict]:
    """One row per figure measured in ``results``: name, value, target, recorded, status and a one-line reason."""
    rows = []
    for fig in figures:
        if fig.bench not in results:
            continue
        result = results[fig.bench]
        if fig.key not in result:
            raise ContractError(f"{fig.name}: bench {fig.bench} reports no key {fig.key!r}")
        value = result[fig.key]
        row = {"figure": fig.name, "value": value, "target": fig.target, "recorded": fig.recorded,
               "tolerance": fig.tolerance, "source": fig.source}
        if value is None:
            row.update(status="unavailable", reason=f"bench {fig.bench} reported null (a dependency is missing)")
        elif fig.target is not None and not target_met(fig, result):
            row.update(status="missed", reason=f"{value} does not meet the target {fig.target}")
        elif not _matches(value, fig.recorded, fig.tolerance):
            row.update(status="moved", reason=f"{value} differs from the recorded {fig.recorded} by more than "
                                              f"{fig.tolerance}: if intended, `interactvlm bench check --update`")
        else:
            row.update(status="ok", reason="")
        rows.append(row)
    return rows


def _matches(value, recorded, tolerance: float) -> bool:
    if isinstance(value, bool) or isinstance(recorded, bool) or recorded is None:
        return value == recorded
    return abs(float(value) - float(recorded)) <= tolerance


def check(cfg, fast: bool = False, update: bool = False, path: str | Path | None = None, progress=None) -> dict:
    """Measure the contract's benches (only the ``fast`` ones with ``fast``) and compare; with ``update`` also
    record the measured values in ``path`` (default the repository's file). Returns ``{"ok", "fast", "updated",
    "benches", "failed", "figures": rows}``."""
    path = Path(path) if path is not None else CONTRACT_FILE
    runs, figures = load_contract(path)
    benches = [b for b in runs if (runs[b]["fast"] or not fast) and any(f.bench == b for f in figures)]
    results = measure(cfg, benches, runs, progress)
    rows = compare(figures, results)
    failed = [r["figure"] for r in rows if r["status"] in ("missed", "moved")]
    if update:
        data = json.loads(path.read_text())
        measured = {r["figure"]: r["value"] for r in rows if r["value"] is not None}
        for entry in data["figures"]:
            name = f"{entry['bench']}.{entry['key']}"
            if name in measured:
                entry["recorded"] = measured[name]
        atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())
        failed = [r["figure"] for r in rows if r["status"] == "missed"]
    return {"ok": not failed, "fast": fast, "updated": update, "benches": benches, "failed": failed,
            "figures": rows}


def run(cfg, args) -> dict:
    """``interactvlm bench check`` (through :mod:`interactvlm_ros.cli.bench`)."""
    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    return check(cfg, fast=bool(getattr(args, "fast", False)), update=bool(getattr(args, "update", False)),
                 progress=progress)
