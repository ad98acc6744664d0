"""Optimizers and LR schedules: built from a configuration's ``optim`` / ``scheduler`` sections
(:func:`make_optimizer`, :func:`make_scheduler`), and factories that build the same optimizer or
schedule anew for new parameters (progressive training rebuilds both at every step boundary)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "OptimizerFactory",
    "SchedulerFactory",
    "make_optimizer",
    "make_scheduler",
    "optimizer_factory",
    "scheduler_factory",
]

OptimizerFactory = Callable[[Sequence[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], object]


def make_optimizer(params, optim_conf: dict) -> torch.optim.Optimizer:
    """The ``optim`` section's optimizer (Asteroid's registry; default Adam)."""
    from asteroid.engine.optimizers import make_optimizer as asteroid_optimizer

    optim_conf = dict(optim_conf)
    return asteroid_optimizer(params, optimizer=optim_conf.pop("optimizer", "adam"), **optim_conf)


def make_scheduler(optimizer: torch.optim.Optimizer, sched_conf: dict | None):
    """The ``scheduler`` section's schedule: ``step`` (default) or ``plateau``; none if empty."""
    conf = dict(sched_conf or {})
    kind = conf.pop("type", "step")
    if not conf and kind == "step":
        return None
    if kind == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=int(conf.pop("step_size")), gamma=float(conf.pop("gamma", 0.1))
        )
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=float(conf.pop("factor", 0.5)), patience=int(conf.pop("patience", 5))
        )
    raise ValueError(f"scheduler.type must be 'step' or 'plateau', got {kind!r}.")


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


def scheduler_factory(scheduler) -> SchedulerFactory:
    """A callable ``optimizer -> scheduler`` from a template, a factory or a Lightning dict
    (``optimizer -> None`` for no scheduler)."""
    if scheduler is None:
        return lambda opt: None
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
