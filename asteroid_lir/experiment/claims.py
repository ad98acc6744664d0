"""The command of a recipe's claims script: measure one run of a grid, or report on all of them.

A recipe says what its claims are (``egs/<recipe>/local/claims.py``: a ``measure(exp_dir)``
function and a ``build(runs, out_dir)`` that returns the report's sections and Markdown body);
:func:`claims_main` does the rest the same way for every recipe: the command line used by
``utils/run_grid.sh``, reading the runs of the grid (:func:`asteroid_lir.experiment.grid.collect`),
the header (grid, steps, seeds, command, machine, wall time) and the files ``measure.json``,
``report.json`` and ``report.md``. Each claim is a :func:`claim` record whose verdict is
"reproduced", "not reproduced" or "not run".
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from .grid import collect, load_grid
from .report import markdown_section, markdown_table

__all__ = ["claim", "claim_lines", "claims_main", "iter_claims", "mean_std", "section"]


def claim(name: str, verdict: bool | None, text: str, numbers: dict | None = None) -> dict:
    """One claim of a report: ``verdict`` ``None`` means the runs it needs are missing."""
    label = "not run" if verdict is None else ("reproduced" if verdict else "not reproduced")
    return {"name": name, "verdict": label, "text": text, "numbers": numbers or {}}


def claim_lines(claims: list[dict]) -> list[str]:
    """Markdown bullets of claims."""
    return [f"- **{c['verdict']}** ({c['name']}): {c['text']}" for c in claims]


def section(
    title: str, claims: list[dict], header: list[str] | None = None, rows: list | None = None
) -> list[str]:
    """A report's section: its level-2 heading, its table (when ``header`` is given) and claims.

    Args:
        title, claims: the heading's text and the :func:`claim` records.
        header, rows: the table (cells through :func:`~asteroid_lir.experiment.report.fmt`).

    Returns:
        list of str: the Markdown lines, starting with an empty one.
    """
    table = [] if header is None else [markdown_table(header, rows)]
    return ["", *markdown_section(title, *table, claim_lines(claims))]


def mean_std(summary: dict, sign: str = "") -> str:
    """``mean ± std`` of :func:`asteroid_lir.experiment.stats.seed_summary` in dB, two decimals
    (``sign="+"``: the mean signed)."""
    return f"{summary['mean']:{sign}.2f} ± {summary['std']:.2f}"


def iter_claims(node) -> Iterator[dict]:
    """Every claim in a report's sections (nested dicts and lists with ``claims`` lists)."""
    if isinstance(node, dict):
        yield from node.get("claims", [])
        for key, value in node.items():
            if key != "claims" and isinstance(value, (dict, list)):
                yield from iter_claims(value)
    elif isinstance(node, list):
        for value in node:
            yield from iter_claims(value)


def _meta(args: argparse.Namespace, grid: dict) -> dict:
    wall = args.wall_seconds
    meta = {
        "command": None if args.command_line is None else f"`{args.command_line}`",
        "machine": args.machine,
        "wall time": None if wall is None else f"{wall // 60} min {wall % 60} s",
        "runs at a time": f"{args.jobs}, {grid['threads']} thread(s) each",
    }
    return {k: v for k, v in meta.items() if v is not None}


def claims_main(
    argv: list[str] | None,
    title: str,
    measure: Callable[[Path], dict],
    build: Callable[[dict, Path], tuple[dict, list[str]]],
) -> int:
    """``measure --exp_dir DIR`` or ``report --grid FILE --root DIR [--out_dir DIR]``.

    Args:
        argv: command-line arguments (``None``: ``sys.argv``).
        title: the report's title.
        measure: ``exp_dir -> dict`` written to ``<exp_dir>/measure.json``.
        build: ``(runs, out_dir) -> (sections, markdown lines)``; ``runs`` is
            :func:`~asteroid_lir.experiment.grid.collect`'s result with ``results`` and
            ``measure``; plots go to ``out_dir``.

    Returns:
        int: 0.
    """
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("command", choices=("measure", "report"))
    parser.add_argument("--exp_dir", help="measure: a trained and evaluated run")
    parser.add_argument("--grid", help="report: the grid file as run")
    parser.add_argument("--root", help="report: the folder of the runs")
    parser.add_argument("--out_dir", default=None, help="report: where it goes (default: root)")
    parser.add_argument("--command", dest="command_line", default=None, help="as it was run")
    parser.add_argument("--machine", default=None, help="where it ran")
    parser.add_argument("--wall_seconds", type=int, default=None, help="the grid's wall time")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    args = parser.parse_args(argv)
    if args.command == "measure":
        if not args.exp_dir:
            parser.error("measure needs --exp_dir")
        out = measure(Path(args.exp_dir))
        (Path(args.exp_dir) / "measure.json").write_text(json.dumps(out, indent=1) + "\n")
        return 0
    if not (args.grid and args.root):
        parser.error("report needs --grid and --root")
    grid = load_grid(args.grid)
    runs = collect(grid, args.root, ("results.json", "measure.json"))
    out = Path(args.out_dir or args.root)
    out.mkdir(parents=True, exist_ok=True)
    sections, body = build(runs, out)
    report = {"grid": args.grid, "steps": grid["steps"], "seeds": grid["seeds"],
              "meta": _meta(args, grid), **sections}  # fmt: skip
    header = [
        f"# {title}",
        "",
        f"Grid: `{args.grid}`: every model {grid['steps']} training steps, seeds "
        f"{grid['seeds']}; figures in dB as mean ± standard deviation over the seeds. A claim "
        "that one model is ahead of another is reproduced only when every seed of the one "
        "scores above every seed of the other.",
        "",
        *(f"- {k}: {v}" for k, v in report["meta"].items()),
    ]
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    (out / "report.md").write_text("\n".join(header + body) + "\n")
    for c in iter_claims(sections):
        print(f"[claims] {c['verdict']}: {c['name']}: {c['text']}")
    return 0
