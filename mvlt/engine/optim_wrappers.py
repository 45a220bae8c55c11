"""Optimizer wrappers (registry: OPTIM_WRAPPERS)."""
import math
from contextlib import contextmanager
from typing import List, Optional, Union

import torch
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast

from mvlt.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that skips an update whose gradients are not finite.

    A single NaN / Inf gradient would turn every weight into NaN for good;
    skipping that one update (as AMP's loss scaler does) keeps the weights
    finite. :class:`~mvlt.engine.hooks.NonFiniteGuardHook` names the loss
    term, counts the skipped steps and stops the run after too many in a
    row.

    The decision needs the total gradient norm on the host. With
    ``clip_grad=dict(max_norm=...)`` (the default runtime) MMEngine already
    reads the norm for its log, so the guard costs nothing; otherwise the
    norm is computed and read once per step.

    Attributes:
        last_step_skipped (bool): Whether the latest ``step`` was skipped.
        skipped_steps (int): Skipped steps of this process so far.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.last_step_skipped = False
        self.skipped_steps = 0
        self._grad_norm: Optional[float] = None

    def _params_with_grad(self) -> List[torch.Tensor]:
        return [
            param for group in self.optimizer.param_groups
            for param in group['params']
            if param.requires_grad and param.grad is not None
        ]

    def _clip_grad(self) -> None:
        """MMEngine's clipping, keeping the host copy of the norm."""
        params = self._params_with_grad()
        if params:
            grad = self.clip_func(params, **self.clip_grad_kwargs)
            # clip_grad_value_ returns None: the norm is computed in step().
            if grad is not None:
                self._grad_norm = float(grad)
                self.message_hub.update_scalar(f'train/{self.grad_name}',
                                               self._grad_norm)

    def step(self, **kwargs) -> None:
        """Clip, then update unless the gradient norm is NaN or Inf."""
        self._grad_norm = None
        if self.clip_grad_kwargs:
            self._clip_grad()
        norm = self._grad_norm
        if norm is None:
            grads = [param.grad for param in self._params_with_grad()]
            norm = float(torch.nn.utils.get_total_norm(grads)) \
                if grads else 0.0
        self.last_step_skipped = not math.isfinite(norm)
        if self.last_step_skipped:
            self.skipped_steps += 1
            return
        self.optimizer.step(**kwargs)


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(NonFiniteSkipOptimWrapper):
    """Mixed precision without loss scaling: bf16 autocast on CPU or GPU.

    bfloat16 has float32's exponent range (8 bits), so gradients do not
    underflow and need no loss scaler (PyTorch AMP documentation,
    "Gradient Scaling": needed for float16 only). MMEngine 0.10's
    ``AmpOptimWrapper`` asserts a GPU / NPU / MLU in its constructor and
    always builds a ``torch.cuda.amp.GradScaler``, so it cannot train on a
    CPU; this wrapper adds only MMEngine's ``autocast`` context to the
    forward (:meth:`optim_context`) and keeps the non-finite update skip of
    :class:`NonFiniteSkipOptimWrapper`. Parameters, gradients and optimizer
    states stay float32. ``mvlt.utils.config.enable_amp`` (``--amp``)
    chooses it for bf16; float16 uses ``AmpOptimWrapper`` (loss scaling).

    Args:
        dtype (str | torch.dtype): Autocast dtype; ``'bfloat16'`` (default).
            ``'float16'`` is refused: it needs loss scaling, use
            ``AmpOptimWrapper``.
        device_type (str, optional): ``'cpu'`` or ``'cuda'``; default:
            MMEngine's ``get_device()``.
        **kwargs: ``OptimWrapper`` arguments.

    Raises:
        ValueError: ``dtype`` is not bfloat16.
    """

    def __init__(self,
                 *args,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 device_type: Optional[str] = None,
                 **kwargs) -> None:
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, None)
        if dtype is not torch.bfloat16:
            raise ValueError(
                f'AutocastOptimWrapper trains in bfloat16 only, got dtype='
                f'{dtype}; float16 needs loss scaling: use '
                "optim_wrapper.type='AmpOptimWrapper' (GPU).")
        super().__init__(*args, **kwargs)
        self.cast_dtype = dtype
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        """``OptimWrapper``'s context plus bf16 autocast of the forward."""
        with super().optim_context(model), autocast(
                device_type=self.device_type, dtype=self.cast_dtype):
            yield
