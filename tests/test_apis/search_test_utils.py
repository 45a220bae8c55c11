"""Helpers of the catalogue-search tests (not a test module)."""
import os.path as osp
from typing import Sequence

import numpy as np
import torch
from mmengine.config import Config

from conftest import NANO_ITC, REPO, save_model_checkpoint  # noqa: F401
from mvlt.apis import MVLTInferencer

#: The demo model (configs/_base_/models/mvlt_synthetic-demo.py) with an ITC
#: head as wide as its T^4 / V^4 (256), so that identity projections exist.
DEMO_ITC = dict(
    type='ITCHead', visual_channels=256, text_channels=256, embed_dim=256)
DEMO_RETRIEVAL = osp.join(REPO, 'configs', 'mvlt', 'synthetic',
                          'retrieval_synthetic_zeroshot.py')


def save_model(cfg: Config, out_dir: str, name: str, seed: int = 0) -> tuple:
    """Dump ``cfg`` and a seeded random-weight checkpoint of its model;
    return (config path, checkpoint path)."""
    checkpoint = save_model_checkpoint(cfg.model,
                                       osp.join(out_dir, f'{name}.pth'), seed)
    config = osp.join(out_dir, f'{name}.py')
    cfg.dump(config)
    return config, checkpoint


def fit_itc_projections(config: str, checkpoint: str,
                        images: Sequence[np.ndarray], captions: Sequence[str],
                        products: Sequence[str]) -> None:
    """Rewrite ``checkpoint`` so that its ITC head embeds every image of a
    product and that product's caption to the same one-hot vector.

    A stand-in for a trained ITC head that takes no training time: with
    identity projections the head's embeddings are the L2-normalised pooled
    features f; a linear map A with A f = e_p (least squares, exact for
    fewer items than channels) then gives normalise(A |f| f) = e_p. The
    encoder and the ITM head keep their random weights.
    """
    inferencer = MVLTInferencer(config, checkpoint)
    head = inferencer.model.heads.itc
    with torch.no_grad():
        for proj in (head.visual_proj, head.text_proj):
            if proj.weight.shape[0] != proj.weight.shape[1]:
                raise ValueError('fit_itc_projections needs embed_dim equal '
                                 'to the ITC head input widths.')
            proj.weight.copy_(torch.eye(proj.weight.shape[0]))
            proj.bias.zero_()
    names = sorted(set(products))
    dim = head.visual_proj.weight.shape[0]
    if len(names) > dim:
        raise ValueError(f'{len(names)} products need embed_dim >= that.')
    targets = np.eye(dim)[[names.index(p) for p in products]]
    distinct = dict(zip(captions, targets))
    image_feats = inferencer.embed_images(list(images)).astype(np.float64)
    text_feats = inferencer.embed_captions(list(distinct)).astype(np.float64)
    for proj, feats, goal in ((head.visual_proj, image_feats, targets),
                              (head.text_proj, text_feats,
                               np.stack(list(distinct.values())))):
        solution = np.linalg.lstsq(feats, goal, rcond=None)[0]
        with torch.no_grad():
            proj.weight.copy_(torch.from_numpy(solution.T).float())
    torch.save(
        dict(state_dict=inferencer.model.state_dict(), meta={}), checkpoint)
