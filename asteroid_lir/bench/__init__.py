"""Benchmarks comparing asteroid_lir components with their baselines, side by side in one process.

Run ``python -m asteroid_lir.bench --list`` for the registered benchmarks. A benchmark is a module
with ``NAME``, ``DESCRIPTION``, ``run(args) -> dict`` (``{"rows": [...], ...}``),
``to_markdown(result) -> str`` and optionally ``add_arguments(parser)``; adding one means adding a
module and one line to :data:`BENCHMARKS`.
"""

BENCHMARKS: dict[str, str] = {
    "sudormrf": "asteroid_lir.bench.sudormrf",
    "progressive": "asteroid_lir.bench.progressive",
    "early-exit": "asteroid_lir.bench.early_exit",
    "tflocoformer": "asteroid_lir.bench.tflocoformer",
    "sfc": "asteroid_lir.bench.sfc",
    "long-input": "asteroid_lir.bench.long_input",
}

__all__ = ["BENCHMARKS"]
