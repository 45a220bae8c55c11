"""PVT-VL: the four-stage pyramid vision-language encoder of MVLT."""
import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from timm.layers import resample_abs_pos_embed, trunc_normal_

from mvlt.registry import MODELS
from ..layers import PVTVLStage, build_bert_embeddings


class VLFeatures(NamedTuple):
    """Outputs of :class:`PVTVL`.

    Attributes:
        visual: four maps (B, D_k, H / R_k, W / R_k) at strides 4, 8, 16, 32,
            or None when run on text alone.
        text: four features (B, L, D_k), or None when run on images alone.
        text_mask: bool (B, L), True for real tokens, or None.
    """
    visual: Optional[Tuple[torch.Tensor, ...]]
    text: Optional[Tuple[torch.Tensor, ...]]
    text_mask: Optional[torch.Tensor]


class UnimodalFeatures(NamedTuple):
    """Outputs of separate image-only and caption-only encoder passes
    (the inputs of the ITC head).

    Attributes:
        visual: :class:`VLFeatures` of the image-only pass, or None.
        text: :class:`VLFeatures` of the text-only pass, or None.
    """
    visual: Optional[VLFeatures]
    text: Optional[VLFeatures]


@MODELS.register_module()
class PVTVL(BaseModule):
    """PVT-VL encoder (MVLT paper section 3.1, table 1).

    Raw pixels and word-piece ids go in; each of the four stages embeds both
    (eq. 1 for text, eq. 2 for patches), concatenates ``[text; visual]`` and
    runs M_k blocks of joint attention with spatial reduction of the visual
    keys/values; outputs are four pyramid visual maps and four text features.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'medium'``, ``'large'``
            or a dict with ``embed_dims``, ``depths``, ``num_heads``,
            ``mlp_ratios``, ``sr_ratios`` and optionally ``patch_sizes`` and
            ``strides`` (each a 4-tuple).
        img_size (int | tuple): Image size the position embeddings are made
            for (default 256).
        in_channels (int): Image channels.
        text_len (int): Maximum caption length L in tokens (default 128).
        vocab_size (int): Word-piece vocabulary size (BERT: 30522).
        text_hidden (int): Width of the BERT-layout text embedding (768).
        max_position_embeddings (int): Rows of the BERT position table.
        type_vocab_size (int): Rows of the BERT token-type table.
        pad_token_id (int): Id of [PAD].
        qkv_bias (bool): Bias in q / kv projections.
        drop_rate, attn_drop_rate (float): Dropout rates.
        drop_path_rate (float): Stochastic depth, linear over all blocks.
        text_dropout (float): Dropout of the BERT text embedding.
        norm_eps (float): LayerNorm epsilon in the blocks (PVT: 1e-6).
        embed_norm_eps (float): LayerNorm epsilon of the patch / text
            embeddings and of the spatial reduction (PVT v1 and the
            reference code keep PyTorch's default, 1e-5).
        use_key_padding_mask (bool): Keep [PAD] tokens out of the keys
            (default). The reference implementation lets them take part;
            set False to reproduce it.
        interpolate_pos_embed (bool): Resize visual position embeddings
            bicubically when the input size differs from ``img_size``; when
            False such an input is an error.
        attn_impl (str): ``'sdpa'`` (``F.scaled_dot_product_attention``) or
            ``'eager'`` (explicit softmax, the straightforward reference).
        recompute_gelu (bool): Save one MLP activation per block in training
            by recomputing the GELU in backward (see ``PVTVLBlock``).
        onednn (bool): oneDNN's fused linear kernel for the block products
            in CPU float32 inference (see ``PVTVLBlock``).
        with_cp (bool | Sequence[bool]): Activation (gradient)
            checkpointing, as mmpretrain's ``with_cp``: each block of a
            checkpointed stage keeps only its input in training and
            recomputes the rest in backward, one block at a time. One bool
            for every stage or four, one per stage (e.g. ``(True, True,
            False, False)``: the large early stages). Off by default.
            Within a checkpointed block the MLP is also recomputed in
            chunks of ``cp_mlp_chunk_size`` tokens. Checkpointing whole
            stages instead was tried and kept more: recomputing a stage
            holds all its blocks' activations at once. Figures in
            docs/benchmark.md ("Memory levers").
        cp_mlp_chunk_size (int, optional): Tokens per checkpointed MLP
            chunk in the blocks of checkpointed stages (``PVTVLBlock``'s
            ``mlp_chunk_size``): the recomputed MLP of the first stage
            (4,224 tokens x 512 hidden units per sample at 256 px) is
            otherwise the step's largest tensor. None: the MLP in one
            piece. 512 by default (measured in docs/benchmark.md).
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['t', 'tiny'], dict(depths=(2, 2, 2, 2))),
        **dict.fromkeys(['s', 'small'], dict(depths=(3, 4, 6, 3))),
        **dict.fromkeys(['m', 'medium'], dict(depths=(3, 4, 18, 3))),
        **dict.fromkeys(['l', 'large'], dict(depths=(3, 8, 27, 3))),
    }
    # Table 1 of the paper plus the PVT-v1 heads / MLP / SR ratios.
    default_arch: dict = dict(
        embed_dims=(64, 128, 320, 512),
        num_heads=(1, 2, 5, 8),
        mlp_ratios=(8, 8, 4, 4),
        sr_ratios=(8, 4, 2, 1),
        patch_sizes=(4, 2, 2, 2),
        strides=(4, 2, 2, 2))
    arch_keys = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios',
                 'sr_ratios', 'patch_sizes', 'strides')

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 img_size: Union[int, Sequence[int], None] = 256,
                 in_channels: int = 3,
                 text_len: int = 128,
                 vocab_size: int = 30522,
                 text_hidden: int = 768,
                 max_position_embeddings: int = 512,
                 type_vocab_size: int = 2,
                 pad_token_id: int = 0,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1,
                 text_dropout: float = 0.1,
                 norm_eps: float = 1e-6,
                 embed_norm_eps: float = 1e-5,
                 use_key_padding_mask: bool = True,
                 interpolate_pos_embed: bool = True,
                 attn_impl: str = 'sdpa',
                 recompute_gelu: bool = True,
                 onednn: bool = True,
                 with_cp: Union[bool, Sequence[bool]] = False,
                 cp_mlp_chunk_size: Optional[int] = 512,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if img_size is None or text_len is None:
            raise ValueError(
                'PVTVL needs img_size and text_len; None means "the data '
                'preprocessor\'s", which MVLT fills in: build the backbone '
                'through MVLT or give both.')
        self.arch_settings = self._parse_arch(arch)
        settings = self.arch_settings
        self.img_size = (img_size, img_size) if isinstance(
            img_size, int) else tuple(img_size)
        self.text_len = text_len
        self.vocab_size = vocab_size
        self.embed_dims = tuple(settings['embed_dims'])
        self.use_key_padding_mask = use_key_padding_mask
        self.interpolate_pos_embed = interpolate_pos_embed
        if isinstance(with_cp, bool):
            with_cp = (with_cp, ) * 4
        if len(with_cp) != 4:
            raise ValueError('PVTVL: with_cp must be a bool or four bools '
                             f'(one per stage), got {with_cp!r}.')
        self.with_cp = tuple(bool(flag) for flag in with_cp)

        self.text_embeddings = build_bert_embeddings(
            vocab_size,
            hidden_size=text_hidden,
            max_position_embeddings=max_position_embeddings,
            type_vocab_size=type_vocab_size,
            pad_token_id=pad_token_id,
            dropout=text_dropout)

        total_depth = sum(settings['depths'])
        rates = torch.linspace(0, drop_path_rate, total_depth).tolist()
        grid = self.img_size
        in_ch, text_in = in_channels, text_hidden
        self.stages = nn.ModuleList()
        for k in range(4):
            grid = tuple(
                (g - settings['patch_sizes'][k]) // settings['strides'][k] + 1
                for g in grid)
            depth = settings['depths'][k]
            start = sum(settings['depths'][:k])
            self.stages.append(
                PVTVLStage(
                    in_ch,
                    text_in,
                    settings['embed_dims'][k],
                    depth,
                    settings['num_heads'][k],
                    settings['mlp_ratios'][k],
                    settings['sr_ratios'][k],
                    settings['patch_sizes'][k],
                    settings['strides'][k],
                    grid,
                    text_len,
                    rates[start:start + depth],
                    qkv_bias=qkv_bias,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    attn_impl=attn_impl,
                    norm_eps=norm_eps,
                    embed_norm_eps=embed_norm_eps,
                    recompute_gelu=recompute_gelu,
                    onednn=onednn,
                    mlp_chunk_size=cp_mlp_chunk_size
                    if self.with_cp[k] else None))
            in_ch = text_in = settings['embed_dims'][k]
        self._init_parameters()

    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> dict:
        settings = dict(cls.default_arch)
        if isinstance(arch, str):
            key = arch.lower()
            if key not in cls.arch_zoo:
                raise KeyError(
                    f'PVTVL: unknown arch {arch!r}; choose one of '
                    f'{sorted(set(cls.arch_zoo))} or pass a dict with '
                    f'{cls.arch_keys}.')
            settings.update(cls.arch_zoo[key])
        else:
            arch = {k: v for k, v in arch.items() if k != '_delete_'}
            unknown = set(arch) - set(cls.arch_keys)
            if unknown:
                raise KeyError(f'PVTVL: unknown arch keys {sorted(unknown)}; '
                               f'allowed: {cls.arch_keys}.')
            settings.update(arch)
            missing = [k for k in cls.arch_keys if k not in settings]
            if missing:
                raise KeyError(f'PVTVL: arch dict lacks {missing}.')
        for key in cls.arch_keys:
            if len(settings[key]) != 4:
                raise ValueError(f'PVTVL: arch {key} must have 4 entries, '
                                 f'got {settings[key]}.')
        return {k: tuple(v) for k, v in settings.items()}

    def _init_parameters(self) -> None:
        """PVT initialisation: truncated normal for linears and position
        embeddings, fan-out normal for convolutions."""
        for module in self.stages.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[
                    1] * module.out_channels
                nn.init.normal_(module.weight, 0, math.sqrt(2.0 / fan_out))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for stage in self.stages:
            trunc_normal_(stage.pos_embed, std=0.02)
            trunc_normal_(stage.text_pos_embed, std=0.02)
        for emb in (self.text_embeddings.word_embeddings,
                    self.text_embeddings.position_embeddings,
                    self.text_embeddings.token_type_embeddings):
            nn.init.normal_(emb.weight, std=0.02)
        pad = self.text_embeddings.word_embeddings.padding_idx
        if pad is not None:
            with torch.no_grad():
                self.text_embeddings.word_embeddings.weight[pad].zero_()

    @property
    def word_embeddings(self) -> nn.Embedding:
        """The word-piece embedding table (tied to the MLM decoder)."""
        return self.text_embeddings.word_embeddings

    def _visual_pos_embed(self, stage: PVTVLStage,
                          hw: Tuple[int, int]) -> torch.Tensor:
        if tuple(hw) == stage.num_patches:
            return stage.pos_embed
        if not self.interpolate_pos_embed:
            raise ValueError(
                f'PVTVL: the image gives a {hw[0]}x{hw[1]} patch grid but the '
                f'position embeddings were made for {stage.num_patches} '
                f'(img_size={self.img_size}). Resize images to '
                f'{self.img_size} or set interpolate_pos_embed=True.')
        return resample_abs_pos_embed(
            stage.pos_embed,
            new_size=list(hw),
            old_size=list(stage.num_patches),
            num_prefix_tokens=0,
            interpolation='bicubic',
            antialias=False)

    def _run_block(self,
                   stage_index: int,
                   block: nn.Module,
                   x: torch.Tensor,
                   num_text: int,
                   hw: Tuple[int, int],
                   text_mask: Optional[torch.Tensor],
                   num_queries: Optional[int] = None) -> torch.Tensor:
        if self.with_cp[stage_index] and x.requires_grad:
            return cp.checkpoint(
                block,
                x,
                num_text,
                hw,
                text_mask,
                num_queries,
                use_reentrant=False)
        return block(x, num_text, hw, text_mask, num_queries)

    def forward(self,
                images: Optional[torch.Tensor] = None,
                input_ids: Optional[torch.Tensor] = None,
                attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None,
                text_queries: Optional[int] = None) -> VLFeatures:
        """Encode images and/or captions.

        Args:
            images (Tensor, optional): (B, 3, H, W) normalised pixels.
            input_ids (Tensor, optional): (B, L) word-piece ids, L <=
                ``text_len``.
            attention_mask (Tensor, optional): (B, L), 1 for real tokens and
                0 for [PAD]; used as a key padding mask when
                ``use_key_padding_mask`` is on.
            token_type_ids (Tensor, optional): (B, L), zeros by default.
            text_queries (int, optional): Compute the last block of the last
                stage for the first ``text_queries`` caption tokens only
                (1: the [CLS] token, all that matching and recognition read).
                Keys and values still come from every token, so those
                outputs are exact; the last text feature is then (B,
                text_queries, D_4) and ``visual`` is None.

        Either modality may be omitted (image-only or caption-only pass).

        Returns:
            VLFeatures: visual maps (B, D_k, h_k, w_k) and text features
            (B, L, D_k) of the four stages.
        """
        if images is None and input_ids is None:
            raise ValueError('PVTVL.forward needs images, input_ids or both.')
        if text_queries is not None and (
                input_ids is None
                or not 0 < text_queries <= input_ids.shape[1]):
            raise ValueError(
                f'PVTVL: text_queries={text_queries} needs captions of at '
                'least that many tokens.')
        text = visual = text_mask = None
        batch = images.shape[0] if images is not None else input_ids.shape[0]
        if input_ids is not None:
            if input_ids.shape[0] != batch:
                raise ValueError(
                    f'PVTVL: {batch} images but {input_ids.shape[0]} '
                    'captions; pair them one to one.')
            num_text = input_ids.shape[1]
            if num_text > self.text_len:
                raise ValueError(
                    f'PVTVL: captions of {num_text} tokens exceed text_len='
                    f'{self.text_len}; truncate them in the tokenizer '
                    '(max_length) or raise model.backbone.text_len.')
            text = self.text_embeddings(
                input_ids=input_ids, token_type_ids=token_type_ids)
            if self.use_key_padding_mask and attention_mask is not None:
                text_mask = attention_mask.bool()
        else:
            num_text = 0
        visual_outs: List[torch.Tensor] = []
        text_outs: List[torch.Tensor] = []
        visual_map = images
        last_block = self.stages[-1].blocks[-1]
        for stage_index, stage in enumerate(self.stages):
            parts = []
            hw = (0, 0)
            if text is not None:
                text = stage.text_embed(text) + \
                    stage.text_pos_embed[:, :num_text]
                parts.append(text)
            if visual_map is not None:
                visual, hw = stage.patch_embed(visual_map)
                visual = visual + self._visual_pos_embed(stage, hw)
                parts.append(visual)
            x = stage.pos_drop(parts[0] if len(parts) ==
                               1 else torch.cat(parts, dim=1))
            for block in stage.blocks:
                queries = text_queries if block is last_block else None
                x = self._run_block(stage_index, block, x, num_text, hw,
                                    text_mask, queries)
            if text_queries is not None and stage is self.stages[-1]:
                text_outs.append(x)
                visual_outs = []
                break
            if text is not None and visual_map is not None:
                # One split instead of two slices: its backward writes the
                # gradient of x once instead of zero-filling it twice.
                text, visual = x.split([num_text, x.shape[1] - num_text],
                                       dim=1)
            elif text is not None:
                text = x
            else:
                visual = x
            if text is not None:
                text_outs.append(text)
            if visual_map is not None:
                visual_map = visual.transpose(1, 2).reshape(
                    batch, -1, hw[0], hw[1])
                visual_outs.append(visual_map)
        return VLFeatures(
            visual=tuple(visual_outs) if visual_outs else None,
            text=tuple(text_outs) if text_outs else None,
            text_mask=attention_mask.bool()
            if attention_mask is not None else None)
