"""Training memory on CPU: the bytes of the tensors one training step must hold.

PyTorch keeps no allocator statistics on CPU, and the profiler's allocator peak
(:class:`~asteroid_lir.bench.common.PeakMemory`) also counts every operation's scratch space.
:class:`TrainingMemoryMeter` follows instead the sum of parameters (frozen included), optimizer
state, the batch, activations saved for backward (every storage packed by
``torch.autograd.graph.saved_tensors_hooks``, once per storage, until autograd releases it;
saved parameters are not counted twice) and parameter gradients (from their accumulation), and
reports its maximum over the step. Transient tensors never saved for backward (scratch space,
gradients flowing between operations, the optimizer's temporaries) are not counted. Used by the
``progressive`` benchmark (paper Table 2).
"""

from __future__ import annotations

import torch

__all__ = ["TrainingMemoryMeter"]


class _SavedActivation:
    """Handle packed by the saved-tensor hook; its release marks the storage as freed."""

    __slots__ = ("key", "meter", "tensor")

    def __init__(self, tensor: torch.Tensor, key, meter: TrainingMemoryMeter):
        self.tensor, self.key, self.meter = tensor, key, meter

    def __del__(self):
        self.meter._release(self.key)


class TrainingMemoryMeter:
    """Bytes of the tensors that one training step holds, followed over the step (CPU).

    Use around one step, after a warm-up step so that the optimizer state exists::

        meter = TrainingMemoryMeter(model, optimizer, batch=(mix, targets))
        with meter:
            optimizer.zero_grad(set_to_none=True)
            loss = compute_loss()
            meter.mark("forward")
            loss.backward()
            meter.mark("backward")
            optimizer.step()
            meter.mark("step")
        meter.peak_bytes, meter.breakdown

    Args:
        model (nn.Module): the trained model (all its parameters are counted).
        optimizer (torch.optim.Optimizer): its state tensors are counted.
        batch (sequence of torch.Tensor): input tensors alive during the step.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch=()):
        self.model, self.optimizer = model, optimizer
        self._param_storages = {_storage_key(p) for p in model.parameters()}
        self.static = {
            "params": _unique_bytes(model.parameters()),
            "optimizer_state": self._optimizer_bytes(),
            "batch": _unique_bytes(batch),
        }
        self._saved: dict = {}  # storage key -> [bytes, references]
        self.saved_bytes = self.grad_bytes = self.peak_bytes = 0
        self.breakdown: dict = {}
        self._hooks: list = []
        self._saved_hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _optimizer_bytes(self) -> int:
        return _unique_bytes(v for state in self.optimizer.state.values() for v in state.values())

    # -- events
    def _update(self) -> None:
        total = sum(self.static.values()) + self.saved_bytes + self.grad_bytes
        if total > self.peak_bytes:
            self.peak_bytes = total
            dynamic = {"saved_activations": self.saved_bytes, "grads": self.grad_bytes}
            self.breakdown = {**self.static, **dynamic}

    def _pack(self, tensor: torch.Tensor):
        key = _storage_key(tensor)
        if key in self._param_storages or tensor.device.type == "meta":
            return tensor
        entry = self._saved.setdefault(key, [tensor.untyped_storage().nbytes(), 0])
        if entry[1] == 0:
            self.saved_bytes += entry[0]
        entry[1] += 1
        self._update()
        return _SavedActivation(tensor, key, self)

    @staticmethod
    def _unpack(packed):
        return packed.tensor if isinstance(packed, _SavedActivation) else packed

    def _release(self, key) -> None:
        entry = self._saved.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.saved_bytes -= entry[0]
            del self._saved[key]

    def _on_grad(self, param: torch.Tensor) -> None:
        if id(param) not in self._counted_grads:
            self._counted_grads.add(id(param))
            self.grad_bytes += param.grad.untyped_storage().nbytes()
            self._update()

    def mark(self, phase: str) -> None:
        """A phase of the step ends here (``forward``, ``backward``, ``step``): count it."""
        if phase == "step":
            # Adam allocates its state on the first step only; count what exists now.
            self.static["optimizer_state"] = self._optimizer_bytes()
        self._update()

    # -- context manager
    def __enter__(self) -> TrainingMemoryMeter:
        self._counted_grads: set[int] = set()
        for p in self.model.parameters():
            if p.grad is not None:
                self._counted_grads.add(id(p))
                self.grad_bytes += p.grad.untyped_storage().nbytes()
            if p.requires_grad:
                self._hooks.append(p.register_post_accumulate_grad_hook(self._on_grad))
        self._saved_hooks.__enter__()
        self._update()
        return self

    def __exit__(self, *exc) -> None:
        self._saved_hooks.__exit__(*exc)
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


def _storage_key(tensor: torch.Tensor):
    return tensor.device, tensor.untyped_storage().data_ptr()


def _unique_bytes(tensors) -> int:
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    return sum({_storage_key(t): t.untyped_storage().nbytes() for t in tensors}.values())
