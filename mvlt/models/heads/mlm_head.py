"""Masked language modelling (MLM) head."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mvlt.registry import MODELS
from ..backbones import VLFeatures
from ..utils import num_loss_rows
from .base_head import BaseVLHead


@MODELS.register_module()
class MLMHead(BaseVLHead):
    """Predict the original word pieces at masked positions (paper eq. 7).

    Layout of BERT's prediction head: projection of T^4 to the BERT width
    (neck), transform (dense, GELU, LayerNorm), decoder tied to the word
    embedding matrix plus a bias.

    With ``logits_at='masked'`` (default) vocabulary logits are computed
    only at the K masked slots per caption that the data preprocessor picked
    (``batch['mlm_positions']``), about 15 % of the tokens, of the loss rows;
    ``logits_at='all'`` computes them at every position of every row of the
    batch, as the authors' reference implementation does, and keeps the loss
    rows afterwards (the straightforward way, for speed comparisons). Both
    give the same loss.

    Args:
        neck (dict): Token projection (512 -> 768).
        vocab_size (int): Vocabulary size.
        hidden_size (int): BERT width (768).
        tie_word_embeddings (bool): Share the decoder weight with the word
            embedding of the backbone (set by the model).
        logits_at (str): ``'masked'`` or ``'all'``.
        loss_weight (float): w_3 (1 in the paper).
        pairs (str): ``'matched'`` (default) or ``'all'`` rows.
    """

    requires = ('visual', 'text')
    batch_needs = ('text_mask', )

    def __init__(self,
                 neck: dict = dict(
                     type='TokenProjector', in_channels=512, out_channels=768),
                 vocab_size: int = 30522,
                 hidden_size: int = 768,
                 tie_word_embeddings: bool = True,
                 logits_at: str = 'masked',
                 loss_weight: float = 1.0,
                 pairs: str = 'matched',
                 norm_eps: float = 1e-12,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss_weight, init_cfg)
        if logits_at not in ('masked', 'all'):
            raise ValueError("MLMHead: logits_at must be 'masked' or 'all', "
                             f'got {logits_at!r}.')
        self.neck = MODELS.build(neck)
        self.vocab_size = vocab_size
        self.tie_word_embeddings = tie_word_embeddings
        self.logits_at = logits_at
        self.pairs = pairs
        self.transform = nn.Sequential(
            nn.Linear(self.neck.out_channels, hidden_size), nn.GELU(),
            nn.LayerNorm(hidden_size, eps=norm_eps))
        self.decoder = nn.Linear(hidden_size, vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def tie_weights(self, word_embeddings: nn.Embedding) -> None:
        """Share the decoder weight with ``word_embeddings``."""
        if not self.tie_word_embeddings:
            return
        if tuple(word_embeddings.weight.shape) != tuple(
                self.decoder.weight.shape):
            raise ValueError(
                'MLMHead: cannot tie the decoder '
                f'{tuple(self.decoder.weight.shape)} to word embeddings '
                f'{tuple(word_embeddings.weight.shape)}; make '
                'heads.mlm.vocab_size and backbone.vocab_size equal.')
        self.decoder.weight = word_embeddings.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits for token features (..., C) -> (..., V)."""
        return self.decoder(self.transform(self.neck(tokens))) + self.bias

    def loss(self, feats: VLFeatures,
             batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        text = feats.text[-1]
        rows = num_loss_rows(batch, self.pairs, text.shape[0])
        positions = batch['mlm_positions'][:rows]  # (n, K)
        labels = batch['mlm_labels'][:rows]  # (n, K), -100 = no loss
        if self.logits_at == 'masked':
            text = text[:rows]
            index = positions.unsqueeze(-1).expand(-1, -1, text.shape[-1])
            logits = self(text.gather(1, index))  # (n, K, V)
        else:
            logits = self(text)[:rows]  # (B, L, V) -> (n, L, V)
            full = labels.new_full(logits.shape[:2], -100)
            labels = full.scatter(1, positions, labels)
        logits = logits.flatten(0, 1).float()
        labels = labels.flatten()
        valid = labels != -100
        # Sum / count instead of the default mean: a batch without masked
        # tokens gives 0, not NaN.
        loss = F.cross_entropy(
            logits, labels, ignore_index=-100,
            reduction='sum') / valid.sum().clamp_min(1)
        correct = ((logits.argmax(dim=1) == labels) & valid).sum()
        accuracy = correct.float() / valid.sum().clamp_min(1)
        return dict(loss_mlm=loss * self.loss_weight, mlm_acc=accuracy)

    def predict(self, feats: VLFeatures,
                batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``mlm_logits`` (B, L, V) at every position."""
        return dict(mlm_logits=self(feats.text[-1]))
