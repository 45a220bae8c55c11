"""``linear(gelu(a))`` that keeps ``a`` only and recomputes the GELU."""
from typing import Optional

import torch
import torch.nn.functional as F

from .onednn_linear import input_grad, onednn_product, use_onednn


class _GeluLinear(torch.autograd.Function):
    """Autograd of ``F.linear(F.gelu(a), weight, bias)`` saving ``a`` alone.

    Plain autograd keeps both the GELU input (for the GELU's backward) and
    its output (for the weight gradient of the linear): two (..., hidden)
    tensors per MLP. Here the output is recomputed from the input in
    backward, bit for bit the same, at the cost of one element-wise GELU.
    (torch.utils.checkpoint's selective checkpointing, tried first, kept the
    GELU output alive in the same test.) With ``onednn`` the forward product
    and the input gradient use oneDNN's kernel on CPU float32
    (:func:`~mvlt.models.layers.onednn_linear.input_grad`).
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type='cuda')
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor], onednn: bool) -> torch.Tensor:
        ctx.save_for_backward(hidden, weight)
        ctx.has_bias = bias is not None
        ctx.onednn = onednn and use_onednn(hidden)
        if ctx.onednn:
            return onednn_product(F.gelu(hidden), weight, bias)
        return F.linear(F.gelu(hidden), weight, bias)

    @staticmethod
    @torch.amp.custom_bwd(device_type='cuda')
    def backward(ctx, grad_out: torch.Tensor):
        hidden, weight = ctx.saved_tensors
        grad_hidden = grad_weight = grad_bias = None
        flat_grad = grad_out.reshape(-1, grad_out.shape[-1])
        if ctx.needs_input_grad[1]:
            activated = F.gelu(hidden)
            grad_weight = (flat_grad.t() @ activated.reshape(
                -1, activated.shape[-1]).to(flat_grad.dtype)).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = flat_grad.sum(0).to(weight.dtype)
        if ctx.needs_input_grad[0]:
            weight = weight.to(grad_out.dtype)
            grad_activated = input_grad(grad_out, weight) if ctx.onednn \
                else grad_out @ weight
            grad_hidden = torch.ops.aten.gelu_backward(
                grad_activated.to(hidden.dtype), hidden)
        return grad_hidden, grad_weight, grad_bias, None


def gelu_linear(hidden: torch.Tensor,
                weight: torch.Tensor,
                bias: Optional[torch.Tensor] = None,
                onednn: bool = False) -> torch.Tensor:
    """``F.linear(F.gelu(hidden), weight, bias)`` with less saved memory.

    Args:
        hidden (Tensor): (..., H) pre-activation (output of the first MLP
            layer).
        weight (Tensor): (D, H) weight of the second layer.
        bias (Tensor, optional): (D,).
        onednn (bool): oneDNN's kernel for the products on CPU float32
            (see :func:`~mvlt.models.layers.fused_linear`).

    Returns:
        Tensor: (..., D).
    """
    if not torch.is_grad_enabled() or not (hidden.requires_grad
                                           or weight.requires_grad):
        if onednn and use_onednn(hidden):
            return onednn_product(F.gelu(hidden), weight, bias)
        return F.linear(F.gelu(hidden), weight, bias)
    return _GeluLinear.apply(hidden, weight, bias, onednn)
