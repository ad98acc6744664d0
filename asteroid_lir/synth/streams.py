"""Synthesis streams: fixed lists of jobs run in order, in worker processes, collected by key;
and :func:`map_jobs`, the corpus builders' pool of workers for jobs that draw from their own
generators.

Text-to-speech engines with internal state (onnxruntime's random seed, eSpeak NG's static
buffers and ``rand()``) give the same audio only for the same sequence of requests from the same
starting state. The speech pools therefore split their jobs into a fixed number of *streams*
(independent of the number of worker processes); each stream synthesises its jobs in order,
from a fresh engine, so a pool is a function of its seed only.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tqdm import tqdm

__all__ = ["WORKER_STATE", "map_jobs", "run_streams"]

#: What :func:`map_jobs` shares with its jobs (set in every worker process).
WORKER_STATE: dict = {}


def _stream_process(target: Callable, args: tuple, out_queue) -> None:
    try:
        target(*args, lambda key, value: out_queue.put(("item", key, value)))
    except BaseException:  # reported to the parent, which raises
        out_queue.put(("error", args[0] if args else None, traceback.format_exc()))
    out_queue.put(("done", None, None))


def run_streams(
    target: Callable,
    stream_args: Sequence[tuple],
    n_items: int,
    workers: int = 2,
    fresh_process: bool = False,
    desc: str = "synthesis",
    progress: bool = True,
) -> dict[Any, Any]:
    """Run ``target(*args, emit)`` for every stream and collect what it emits.

    Args:
        target (callable): a module-level function; it calls ``emit(key, value)`` once per item.
        stream_args (sequence of tuple): the arguments of each stream (the first one names the
            stream in error messages).
        n_items (int): number of items all streams emit together (for the progress bar).
        workers (int): streams run at once. With ``workers <= 1`` and ``fresh_process`` False
            the streams run one after another in this process.
        fresh_process (bool): run every stream in a newly *spawned* process (an engine whose
            state cannot be reset must not inherit this process' state through ``fork``).
        desc (str): progress bar label.
        progress (bool): show a progress bar.

    Returns:
        dict: every emitted ``key -> value``.

    Raises:
        RuntimeError: a stream failed (with its traceback) or a worker process died.
    """
    results: dict[Any, Any] = {}
    with tqdm(total=n_items, desc=desc, unit="utt", disable=not progress) as bar:

        def collect(key, value) -> None:
            results[key] = value
            bar.update()

        if workers <= 1 and not fresh_process:
            for args in stream_args:
                target(*args, collect)
            return results
        method = "spawn" if fresh_process or "fork" not in mp.get_all_start_methods() else "fork"
        ctx = mp.get_context(method)
        at_once = max(1, int(workers))
        for first in range(0, len(stream_args), at_once):
            _run_batch(ctx, target, stream_args[first : first + at_once], collect)
    return results


def _run_batch(ctx, target: Callable, batch: Sequence[tuple], collect: Callable) -> None:
    out_queue = ctx.Queue()
    procs = [ctx.Process(target=_stream_process, args=(target, a, out_queue)) for a in batch]
    for p in procs:
        p.start()
    try:
        running = len(procs)
        while running:
            try:
                kind, key, value = out_queue.get(timeout=5.0)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs) and out_queue.empty():
                    raise RuntimeError(
                        "The synthesis worker processes stopped unexpectedly."
                    ) from None
                continue
            if kind == "error":
                raise RuntimeError(f"Synthesis stream {key!r} failed:\n{value}")
            if kind == "done":
                running -= 1
            else:
                collect(key, value)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()


def _init_worker(state: dict) -> None:
    WORKER_STATE.clear()
    WORKER_STATE.update(state)


def map_jobs(fn: Callable, jobs: Sequence, state: dict, workers: int) -> Iterator:
    """``fn(job)`` of every job in order, in ``workers`` processes (this one when ``workers <= 1``
    or there is one job), each with :data:`WORKER_STATE` set to ``state``. Every job draws from
    its own generator, so the results do not depend on ``workers``."""
    if workers > 1 and len(jobs) > 1:
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(state,)) as pool:
            yield from pool.imap(fn, jobs, chunksize=8)
    else:
        _init_worker(state)
        yield from map(fn, jobs)
