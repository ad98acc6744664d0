"""Optimizer and scheduler factories: build the same optimizer or LR schedule anew for new
parameters (progressive training rebuilds both at every step boundary)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = ["OptimizerFactory", "SchedulerFactory", "optimizer_factory", "scheduler_factory"]

OptimizerFactory = Callable[[Sequence[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], object]


def optimizer_factory(optimizer) -> OptimizerFactory:
    """A callable ``params -> optimizer`` from an optimizer template or a factory."""
    if isinstance(optimizer, torch.optim.Optimizer):
        # A template: same class and hyper-parameters (`defaults` holds every constructor
        # argument of torch's optimizers), new parameters. Its state is never used.
        opt_class, defaults = type(optimizer), dict(optimizer.defaults)
        return lambda params: opt_class(params, **defaults)
    if callable(optimizer):
        return optimizer
    raise TypeError(
        "optimizer must be a torch optimizer (used as a template) or a callable "
        f"params -> optimizer, got {type(optimizer).__name__}."
    )


def _rebuild_scheduler(template, optimizer: torch.optim.Optimizer):
    """A fresh scheduler of ``template``'s class and settings, driving ``optimizer``."""
    params = inspect.signature(type(template).__init__).parameters
    kwargs = {}
    for name, param in list(params.items())[2:]:  # skip self, optimizer
        if name in ("last_epoch", "verbose") or param.kind in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            continue
        if hasattr(template, name):
            kwargs[name] = getattr(template, name)
        elif param.default is param.empty:
            raise TypeError(
                f"Cannot rebuild a {type(template).__name__} for each progressive step (its "
                f"argument {name!r} is not stored on it): pass a factory optimizer -> scheduler."
            )
    return type(template)(optimizer, **kwargs)


def scheduler_factory(scheduler) -> SchedulerFactory | None:
    """A callable ``optimizer -> scheduler`` from a template, a factory or a Lightning dict."""
    if scheduler is None:
        return None
    if isinstance(scheduler, dict):
        inner = scheduler_factory(scheduler["scheduler"])
        rest = {k: v for k, v in scheduler.items() if k != "scheduler"}
        return lambda opt: {"scheduler": inner(opt), **rest}
    if hasattr(scheduler, "optimizer") and hasattr(scheduler, "step"):
        return lambda opt: _rebuild_scheduler(scheduler, opt)
    if callable(scheduler):
        return scheduler
    raise TypeError(
        "scheduler must be a scheduler instance (used as a template), a callable "
        f"optimizer -> scheduler, or a Lightning scheduler dict; got {type(scheduler).__name__}."
    )
