"""The benchmarks' shared helpers: one peak-memory meter, one spread, one place for both."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from asteroid_lir.bench.common import PeakMemory, ratio_spread, spread, spread_text

BENCH = Path(__file__).resolve().parents[1] / "asteroid_lir" / "bench"
MIB = 2**20


def test_cpu_allocations_count_what_the_block_allocates():
    with PeakMemory("cpu", cpu_allocations=True) as mem:
        big = torch.ones(16 * MIB // 4)  # 16 MiB of float32
        del big
        small = torch.ones(4 * MIB // 4)  # fits in the space freed by big
    assert 16 * MIB <= mem.allocated_increase < 18 * MIB
    assert mem.allocated_before == 0 and small.numel() == MIB
    with PeakMemory("cpu") as untracked:  # no profiler unless asked: nothing counted
        torch.ones(MIB)
    assert untracked.allocated_peak == 0


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux only")
def test_resident_peak_of_the_block_alone():
    ballast = np.ones(64 * MIB // 8)  # a peak before the block, released
    del ballast
    with PeakMemory("cpu", reset_rss=True) as mem:
        block = np.ones(32 * MIB // 8)
        block[::512] = 2.0  # touch the pages
        del block
    assert mem.rss_reset
    assert 28 * MIB < mem.rss_peak - mem.rss_before < 60 * MIB
    with PeakMemory("cpu") as since_start:  # without a reset: the process' peak so far
        pass
    assert since_start.rss_before >= mem.rss_peak - MIB


def test_spread_and_its_text():
    s = spread([3.0, 1.0, 2.0, 10.0])
    assert s == {"min": 1.0, "median": 2.5, "max": 10.0}
    assert spread_text(s) == "1.000 / 2.500 / 10.000"
    assert spread_text(s, "{:.4g}", keys=("min", "max"), sep="-") == "1-10"
    assert ratio_spread([2.0, 6.0], [1.0, 2.0]) == {"min": 2.0, "median": 2.5, "max": 3.0}
    with pytest.raises(ValueError, match="at least one value"):
        spread([])
    with pytest.raises(ValueError, match="differ in count"):
        ratio_spread([1.0], [1.0, 2.0])


def _uses(path: Path) -> tuple[set[str], list[str]]:
    """Names, attributes and keywords the module's code uses, and its non-docstring strings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    names: set[str] = set()
    strings: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
            if isinstance(node.value, ast.Name) and node.value.id == "sys":
                names.add(f"sys.{node.attr}")
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                strings.append(node.value)
        elif isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
            if [e.value for e in node.elts] == ["min", "median", "max"]:
                names.add("<min/median/max>")
    return names, strings


def test_one_meter_one_spread_and_no_recipe_or_sys_path_in_any_benchmark():
    meters = {"max_memory_allocated", "reset_peak_memory_stats", "getrusage", "profile_memory"}
    for path in sorted(BENCH.glob("*.py")):
        names, strings = _uses(path)
        if path.name != "common.py":
            assert not names & meters, f"{path.name} measures memory itself: {names & meters}"
            assert not {"_mmm", "<min/median/max>"} & names, f"{path.name} formats spreads itself"
        assert "sys.path" not in names, f"{path.name} edits sys.path"
        assert "spec_from_file_location" not in names, f"{path.name} executes a file"
        assert not [t for t in strings if t == "egs" or "egs/" in t], f"{path.name} reads egs/"
