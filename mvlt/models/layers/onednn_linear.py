"""Linear layers through oneDNN's kernel on CPU in float32 (fast path)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Activations the fused kernel applies to the product (exact GELU).
ACTIVATIONS = ('none', 'gelu')


def onednn_available() -> bool:
    """Whether this torch build has oneDNN's fused linear kernel."""
    return torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, '_linear_pointwise')


_AVAILABLE = onednn_available()


def use_onednn(x: torch.Tensor) -> bool:
    """Whether products on ``x`` may go through oneDNN: CPU float32, no
    autocast (autocast picks its own kernels and dtypes), not inside
    ``torch.compile`` (inductor lowers the kernel only with constant
    weights, and picks its own kernels), not in an ONNX export (ONNX has no
    such op; ``F.linear`` exports as MatMul + Add)."""
    return (_AVAILABLE and x.device.type == 'cpu' and x.dtype == torch.float32
            and not torch.is_autocast_enabled('cpu')
            and not torch.compiler.is_compiling()
            and not torch.onnx.is_in_onnx_export())


def onednn_product(x: torch.Tensor,
                   weight: torch.Tensor,
                   bias: Optional[torch.Tensor] = None,
                   activation: str = 'none') -> torch.Tensor:
    """``x @ weight.T (+ bias)`` (then GELU) by oneDNN's linear kernel.

    No autograd: the caller's backward (or ``torch.no_grad``) handles it.

    Args:
        x (Tensor): (..., in_features), CPU float32.
        weight (Tensor): (out_features, in_features).
        bias (Tensor, optional): (out_features,).
        activation (str): ``'none'`` or ``'gelu'`` (exact, erf form).

    Returns:
        Tensor: (..., out_features).
    """
    flat = x.reshape(-1, x.shape[-1])
    out = torch.ops.mkldnn._linear_pointwise(
        flat, weight, bias, activation, [],
        'none' if activation == 'gelu' else '')
    return out.view(*x.shape[:-1], out.shape[-1])


def input_grad(grad_out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``grad_out @ weight``: the input gradient of a linear layer.

    oneDNN (on the transposed weight, a copy the size of the weight) when
    the rows outnumber the weight's output features, where the copy is
    small next to the product: measured 10-50 % faster than MKL's GEMM on
    the thin products of PVT-VL's first stages (AMD EPYC, fp32); else
    ``torch.matmul``.
    """
    rows = grad_out.numel() // grad_out.shape[-1]
    if use_onednn(grad_out) and rows >= weight.shape[0]:
        return onednn_product(grad_out, weight.t().contiguous())
    return grad_out @ weight


class _OneDNNLinear(torch.autograd.Function):
    """``F.linear`` with oneDNN's kernel for the forward product and the
    input gradient; the weight gradient stays ``torch.mm`` (MKL reads the
    transposed operands in place, oneDNN would copy both)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return onednn_product(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        flat_grad = grad_out.reshape(-1, grad_out.shape[-1])
        if ctx.needs_input_grad[0]:
            grad_x = input_grad(grad_out, weight)
        if ctx.needs_input_grad[1]:
            grad_weight = flat_grad.t().mm(x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = flat_grad.sum(0)
        return grad_x, grad_weight, grad_bias


def fused_linear(x: torch.Tensor,
                 layer: nn.Linear,
                 activation: str = 'none',
                 onednn: bool = True) -> torch.Tensor:
    """``layer(x)``, followed by GELU when ``activation='gelu'``.

    On CPU in float32 (no autocast) and with ``onednn`` the product runs
    through oneDNN's ``_linear_pointwise`` kernel, the one torch.compile's
    CPU backend emits: measured 10-50 % faster than the MKL GEMM behind
    ``F.linear`` on the shapes of PVT-VL (AMD EPYC). In inference the bias
    and the GELU are fused into it; in training the input gradient goes
    through oneDNN too (:func:`input_grad`) and the GELU is a separate op
    (its backward needs the product). Elsewhere (GPU, autocast, other
    dtypes) it is ``layer(x)``. Same numbers up to float rounding. torch's
    FLOP counter has no formula for the oneDNN kernel; count with
    ``count_flops`` (tools/analysis_tools/benchmark_modes/measure.py),
    which passes one.

    Args:
        x (Tensor): (..., in_features).
        layer (nn.Linear): Weight (out, in) and optional bias.
        activation (str): ``'none'`` or ``'gelu'`` (exact, erf form).
        onednn (bool): Allow the oneDNN kernel.

    Returns:
        Tensor: (..., out_features).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f'activation must be one of {ACTIVATIONS}, got '
                         f'{activation!r}.')
    if onednn and use_onednn(x):
        if not torch.is_grad_enabled() or not (x.requires_grad
                                               or layer.weight.requires_grad):
            return onednn_product(x, layer.weight, layer.bias, activation)
        out = _OneDNNLinear.apply(x, layer.weight, layer.bias)
    else:
        out = layer(x)
    return F.gelu(out) if activation == 'gelu' else out
