"""One refinement core for every block type: ``S = B_N^{I_N} o ... o B_1^{I_1}`` (paper Eq. 2-6).

:class:`RefinementCore` owns everything the paper's framework adds around a block: the step
schedule (``n_blocks`` distinct blocks, each a chain of ``n_sub_blocks`` sub-blocks applied
``n_iters`` times with shared weights), the heads (one per block or one after the last), anytime
estimates (the latent after every step), the frozen prefix of progressive training, and the
adaptive early-exit gate (Eq. 7-10). The block type is a parameter (``make_sub_block``): a
Sudo rm -rf U-ConvBlock on a latent ``(batch, chan, frames)`` and a TF-Locoformer block on
``(batch, chan, frames, freqs)`` plug in alike; a new block type only needs its module.

The gated step loop (Eq. 7-10) and its step semantics are
:class:`~asteroid_lir.masknn.gating.GatedStepsMixin`, which the core inherits.

References:
    [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from .gating import GatedStepsMixin, GatingModule

__all__ = ["REFINEMENT_ARGS", "RefinementCore", "normalize_n_iters"]

#: The refinement and gate arguments every core takes (see :class:`RefinementCore`).
REFINEMENT_ARGS = (
    "n_blocks",
    "n_iters",
    "head_per_block",
    "gate_kernel_size",
    "min_steps",
    "gumbel_tau",
    "exit_is_final",
)


def normalize_n_iters(n_iters: int | Sequence[int], n_blocks: int) -> list[int]:
    """Return one iteration count per block from an int or a per-block sequence.

    Args:
        n_iters: iterations of every block (int) or of each block (sequence of ``n_blocks`` ints).
        n_blocks: number of distinct blocks.

    Returns:
        list[int]: ``n_blocks`` positive iteration counts.

    Raises:
        ValueError: if the length does not match ``n_blocks`` or a count is not positive.
    """
    if isinstance(n_iters, int):
        iters = [n_iters] * n_blocks
    else:
        iters = [int(i) for i in n_iters]
        if len(iters) != n_blocks:
            raise ValueError(
                f"n_iters has {len(iters)} entries but the model has n_blocks={n_blocks}; "
                "give one int for all blocks or one value per block."
            )
    if any(i < 1 for i in iters):
        raise ValueError(f"Every block needs at least one iteration, got n_iters={iters}.")
    return iters


class RefinementCore(GatedStepsMixin, nn.Module):
    """Blocks x sub-blocks x iterations with shared weights, heads, anytime steps and a gate.

    Subclasses build the stem (whatever turns the input into ``z_0``) and may post-process the
    head outputs by overriding :meth:`head`. The heads live in the attribute named by
    :attr:`heads_name` (``"heads"`` here; ``IterativeSuDORMRF`` keeps Asteroid's ``mask_nets``);
    a subclass that keeps its reference's head layout builds its heads itself
    (``make_head=None``) and overrides :meth:`head` and :meth:`head_modules`. The sub-blocks live
    in :attr:`blocks_name` (see there).

    Gating is an argument of every core: ``gate_kernel_size`` builds the paper's
    :class:`~asteroid_lir.masknn.GatingModule` on ``latent_channels`` channels (a TF latent is
    pooled over frequency by it); ``gate=`` takes any other module with the same ``decide``
    method. :meth:`refinement_config` gives these arguments back for a ``get_config``.

    Args:
        make_sub_block (callable): ``() -> nn.Module`` mapping a latent to a latent of the same
            shape; called ``n_blocks * n_sub_blocks`` times.
        make_head (callable or None): ``() -> nn.Module`` reading a latent; called once per
            head. ``None``: the subclass owns its heads (one, or one per block with
            ``head_per_block``) and overrides :meth:`head` and :meth:`head_modules`.
        n_blocks (int): distinct blocks ``N``.
        n_sub_blocks (int): sub-blocks per block ``S``.
        n_iters (int or list of int): iterations per block ``I`` (one value or one per block).
        head_per_block (bool): one head per distinct block (progressive training) instead of
            one after the last block.
        latent_channels (int, optional): channels of the latent (the gate's input size).
        gate_kernel_size (int, optional): build the paper's gate with this many frames in its
            temporal convolution (needs ``latent_channels``); ``None``: no gate.
        gate (nn.Module, optional): a custom gate instead (``decide(z, tau) -> (batch,)`` 0/1
            values); a core is gated when either is given (single-head cores only).
        min_steps (int): steps always taken before the first gate.
        gumbel_tau (float): Gumbel-softmax temperature of the gate in training.
        exit_is_final (bool): in training, a 0 gate stops all later steps of that sample.

    References:
        [1] "Latent Iterative Refinement for Modular Source Separation", Sec. 2.1-2.3.
    """

    heads_name = "heads"

    #: Where the sub-blocks are registered. ``"blocks"``: one ``nn.Sequential`` per block,
    #: ``blocks.<b>.<s>``. Any other name registers them flat, ``<name>.<b * n_sub_blocks + s>``:
    #: a model whose reference has one stack of layers keeps the reference's parameter names
    #: (TUSS's ``cond_tse_module.<i>``); :attr:`blocks` then holds ``nn.Sequential`` views of the
    #: same modules (not registered, so every parameter has one name).
    blocks_name = "blocks"

    def __init__(
        self,
        make_sub_block: Callable[[], nn.Module],
        make_head: Callable[[], nn.Module] | None,
        n_blocks: int = 1,
        n_sub_blocks: int = 1,
        n_iters: int | Sequence[int] = 1,
        head_per_block: bool = False,
        latent_channels: int | None = None,
        gate_kernel_size: int | None = None,
        gate: nn.Module | None = None,
        min_steps: int = 1,
        gumbel_tau: float = 1.0,
        exit_is_final: bool = True,
    ):
        super().__init__()
        if gate_kernel_size is not None:
            if gate is not None:
                raise ValueError("Give either gate_kernel_size (the paper's gate) or gate=.")
            if latent_channels is None:
                raise ValueError("gate_kernel_size needs latent_channels (the gate's input).")
            # Built before the blocks: a model's weights for a given seed are those it had when
            # the gate was built outside the core.
            gate = GatingModule(latent_channels, gate_kernel_size)
        if n_blocks < 1 or n_sub_blocks < 1:
            raise ValueError(
                f"n_blocks and n_sub_blocks must be >= 1, got {n_blocks} and {n_sub_blocks}."
            )
        self.n_blocks = n_blocks
        self.n_sub_blocks = n_sub_blocks
        self.n_iters = normalize_n_iters(n_iters, n_blocks)
        self.head_per_block = head_per_block
        blocks = [
            nn.Sequential(*[make_sub_block() for _ in range(n_sub_blocks)]) for _ in range(n_blocks)
        ]
        if self.blocks_name == "blocks":
            self.blocks = nn.ModuleList(blocks)
        else:
            self.add_module(self.blocks_name, nn.ModuleList(m for b in blocks for m in b))
            self.__dict__["blocks"] = blocks  # views of the registered sub-blocks
        if make_head is not None:
            n_heads = n_blocks if head_per_block else 1
            self.add_module(self.heads_name, nn.ModuleList(make_head() for _ in range(n_heads)))
        self.min_steps = min_steps
        self.gumbel_tau = gumbel_tau
        self.exit_is_final = exit_is_final
        if gate is not None:
            if head_per_block and n_blocks > 1:
                raise ValueError("A gated core has one head: use head_per_block=False.")
            if not 0 <= min_steps <= self.n_steps:
                raise ValueError(f"min_steps must be in [0, {self.n_steps}], got {min_steps}.")
            if min_steps == self.n_steps:
                raise ValueError(
                    f"The gate would never decide: the model has {self.n_steps} refinement "
                    f"step(s) and min_steps={min_steps} of them are always taken. Give more "
                    "iterations (n_iters) or a lower min_steps, or build the model without a gate."
                )
            if gumbel_tau <= 0:
                raise ValueError(f"gumbel_tau must be > 0, got {gumbel_tau}.")
            self.gate = gate

    # ------------------------------------------------------------------ schedule and heads
    @property
    def n_steps(self) -> int:
        """Number of refinement steps of the full model (``sum(n_iters)``)."""
        return sum(self.n_iters)

    @property
    def gated(self) -> bool:
        """Whether a gate decides the steps (adaptive early exit)."""
        return "gate" in self._modules

    def refinement_config(self) -> dict:
        """The refinement and gate arguments, for a ``get_config``."""
        return {
            "n_blocks": self.n_blocks,
            "n_iters": list(self.n_iters),
            "head_per_block": self.head_per_block,
            "gate_kernel_size": getattr(self.gate, "kernel_size", None) if self.gated else None,
            "min_steps": self.min_steps,
            "gumbel_tau": self.gumbel_tau,
            "exit_is_final": self.exit_is_final,
        }

    def refine_to_head(
        self, z: torch.Tensor, n_steps: int | None = None
    ) -> tuple[int, torch.Tensor]:
        """``(head_idx, z)``: the refined latent and the head that reads it.

        Ungated: the first ``n_steps`` steps (all by default), read by the head of the block that
        ran last. Gated: the gate's steps (exactly ``n_steps`` when given), one head.
        """
        if self.gated:
            return 0, self.run_gated(z, n_steps)[0]
        block_idx, z = self.run(z, n_steps)
        return self.head_index(block_idx), z

    def step_schedule(self) -> list[int]:
        """Block index applied at each refinement step, in order (length ``n_steps``)."""
        return [b for b, n in enumerate(self.n_iters) for _ in range(n)]

    def head_index(self, block_idx: int) -> int:
        """Index of the head that reads the output of block ``block_idx``."""
        return block_idx if self.head_per_block else 0

    def resolve_n_steps(self, n_steps: int | None) -> int:
        """``n_steps`` checked against the model (``None`` means all steps)."""
        if n_steps is None:
            return self.n_steps
        if not 1 <= n_steps <= self.n_steps:
            raise ValueError(f"n_steps must be in [1, {self.n_steps}], got {n_steps}.")
        return int(n_steps)

    def head_modules(self, head_idx: int) -> list[nn.Module]:
        """The modules of head ``head_idx`` owned by the core."""
        return [getattr(self, self.heads_name)[head_idx]]

    def head(self, z: torch.Tensor, head_idx: int = -1) -> torch.Tensor:
        """Output of head ``head_idx`` for the latent ``z``."""
        return getattr(self, self.heads_name)[head_idx](z)

    def refine(self, z: torch.Tensor, block_idx: int) -> torch.Tensor:
        """Apply block ``block_idx`` once to the latent ``z`` (one refinement step)."""
        return self.blocks[block_idx](z)

    # ------------------------------------------------------------------ ungated paths
    def iter_steps(
        self, z: torch.Tensor, n_steps: int | None = None
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(block_idx, z)`` after each of the first ``n_steps`` steps (anytime outputs)."""
        for block_idx in self.step_schedule()[: self.resolve_n_steps(n_steps)]:
            z = self.refine(z, block_idx)
            yield block_idx, z

    def run(self, z: torch.Tensor, n_steps: int | None = None) -> tuple[int, torch.Tensor]:
        """``(block_idx, z)`` after the first ``n_steps`` steps (all by default)."""
        # Keep only the last step's latent: the earlier ones are freed as the loop goes.
        return deque(self.iter_steps(z, n_steps), maxlen=1)[0]

    def iter_block_ends(
        self, z: torch.Tensor, last_block: int | None = None, grad_from: int = 1
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(block_idx, z)`` after the iterations of blocks ``grad_from..last_block``.

        Blocks before ``grad_from`` (1-based) form the frozen prefix of progressive training:
        they run under ``torch.no_grad()``, so they build no autograd graph and keep no
        activations; nothing is yielded for them.

        Args:
            z (torch.Tensor): the latent ``z_0``.
            last_block (int, optional): last block to run (1-based, default: all).
            grad_from (int): first block (1-based) computed with autograd and yielded.
        """
        last_block = self.n_blocks if last_block is None else self.check_block(last_block)
        if self.check_block(grad_from) > last_block:
            raise ValueError(f"grad_from={grad_from} is after last_block={last_block}.")
        grad = torch.is_grad_enabled()
        for block_idx in range(last_block):
            trained = block_idx + 1 >= grad_from
            with torch.set_grad_enabled(grad and trained):
                for _ in range(self.n_iters[block_idx]):
                    z = self.refine(z, block_idx)
            if trained:
                yield block_idx, z

    def check_block(self, block: int) -> int:
        """``block`` (1-based) checked against the number of blocks."""
        if not 1 <= block <= self.n_blocks:
            raise ValueError(f"block/step must be in [1, {self.n_blocks}], got {block}.")
        return int(block)
