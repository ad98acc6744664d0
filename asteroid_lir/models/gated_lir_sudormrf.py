"""The name of the gated Sudo rm -rf before gating became an argument of every model."""

from __future__ import annotations

import os

from .base import load_model_conf
from .lir_sudormrf import LIRSuDORMRFNet

__all__ = ["GatedLIRSuDORMRFNet"]


class GatedLIRSuDORMRFNet(LIRSuDORMRFNet):
    """A one-block :class:`LIRSuDORMRFNet` with an early-exit gate (paper Sec. 2.3).

    ``LIRSuDORMRFNet(n_blocks=1, gate_kernel_size=...)`` is the same model; this class keeps the
    name, defaults (1 U-ConvBlock, 4 iterations, a gate over 3200 frames) and ``model_args``
    of the files written before, which load and give the same outputs. The state dict is that
    of a one-block ``LIRSuDORMRFNet`` plus ``masker.gate.*``.

    Args:
        n_src, n_sub_blocks: as for :class:`LIRSuDORMRFNet`.
        n_iters (int): maximum number of refinement steps.
        gate_kernel_size (int): frames spanned by the gate, as for :class:`LIRSuDORMRFNet`.
        **kwargs: the other arguments of :class:`LIRSuDORMRFNet` (the gate's ``min_steps``,
            ``gumbel_tau``, ``exit_is_final`` among them); ``n_blocks=1``, one head.

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.3 and 4.3.
    """

    def __init__(
        self,
        n_src: int,
        n_sub_blocks: int = 1,
        n_iters: int = 4,
        gate_kernel_size: int = 3200,
        min_steps: int = 1,
        gumbel_tau: float = 1.0,
        exit_is_final: bool = True,
        **kwargs,
    ):
        if not isinstance(n_iters, int) or isinstance(n_iters, bool):
            raise TypeError(
                f"A gated model has one block: n_iters must be an int, got {n_iters!r}."
            )
        super().__init__(
            n_src,
            n_blocks=1,
            n_sub_blocks=n_sub_blocks,
            n_iters=n_iters,
            gate_kernel_size=gate_kernel_size,
            min_steps=min_steps,
            gumbel_tau=gumbel_tau,
            exit_is_final=exit_is_final,
            **kwargs,
        )

    @staticmethod
    def gated_args(args: dict) -> dict:
        """This class's constructor arguments from those of a one-block ``LIRSuDORMRFNet``."""
        args = {k: v for k, v in args.items() if k not in ("n_blocks", "head_per_block")}
        n_iters = args["n_iters"]
        args["n_iters"] = int(n_iters[0] if isinstance(n_iters, (list, tuple)) else n_iters)
        return args

    def get_model_args(self) -> dict:
        """Arguments needed to re-instantiate the model (the layout of the files written before)."""
        return self.gated_args(super().get_model_args())

    @classmethod
    def from_lir(
        cls,
        model: LIRSuDORMRFNet | dict | str | os.PathLike,
        n_iters: int | None = None,
        **gate_kwargs,
    ) -> GatedLIRSuDORMRFNet:
        """Gated model initialised from a pre-trained one-block ``LIRSuDORMRFNet``
        (:meth:`~asteroid_lir.models.refinement.RefinementModelMixin.with_gate`).

        Args:
            model: a ``LIRSuDORMRFNet`` with ``n_blocks=1``, its serialized package (dict) or
                the path of a file written with ``torch.save(model.serialize(), path)``.
            n_iters (int, optional): maximum steps (default: the model's iterations).
            **gate_kwargs: ``gate_kernel_size`` (default 3200), ``min_steps``, ``gumbel_tau``,
                ``exit_is_final``.

        Returns:
            GatedLIRSuDORMRFNet: the gated model, in training mode.

        Raises:
            TypeError: if ``model`` is not a ``LIRSuDORMRFNet`` (or its package).
            ValueError: if it has more than one distinct block, or is gated already.
        """
        if isinstance(model, (str, os.PathLike)):
            model = load_model_conf(model)
        if isinstance(model, dict):
            if model.get("model_name") != "LIRSuDORMRFNet":
                raise TypeError(
                    f"Expected a LIRSuDORMRFNet package, got {model.get('model_name')!r}."
                )
            model = LIRSuDORMRFNet.from_pretrained(model)
        if not isinstance(model, LIRSuDORMRFNet) or model.refiner.gated:
            raise TypeError(f"from_lir converts a LIRSuDORMRFNet, got {type(model).__name__}.")
        if model.n_blocks != 1:
            raise ValueError(
                f"The gated model iterates one block; the given model has n_blocks="
                f"{model.n_blocks}."
            )
        gate_kwargs.setdefault("gate_kernel_size", 3200)
        return model.with_gate(n_iters, model_cls=cls, **gate_kwargs).train()
