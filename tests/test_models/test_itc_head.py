"""The ITC head and MVLT's unimodal passes."""
import copy

import pytest
import torch
from mmengine.dataset import pseudo_collate

from conftest import NANO_ITC
from mvlt.models.backbones import UnimodalFeatures, VLFeatures
from mvlt.models.heads import ITCHead
from mvlt.models.utils import unmask_input_ids
from mvlt.registry import DATASETS, MODELS
from mvlt.utils import register_all_modules

register_all_modules()


def _feats(batch=4, width=8):
    visual = VLFeatures(
        visual=(torch.randn(batch, width, 2, 2), ), text=None, text_mask=None)
    text = VLFeatures(
        visual=None, text=(torch.randn(batch, 5, width), ), text_mask=None)
    return UnimodalFeatures(visual=visual, text=text)


def test_loss_is_symmetric_infonce_and_skips_same_product():
    torch.manual_seed(0)
    head = ITCHead(visual_channels=8, text_channels=8, embed_dim=4)
    feats = _feats()
    out = head.loss(feats, dict(product_index=torch.tensor([0, 1, 2, 3])))
    images = head.embed_images(feats.visual)
    texts = head.embed_texts(feats.text)
    logits = images @ texts.t() / head.temperature
    target = torch.arange(4)
    expected = (torch.nn.functional.cross_entropy(logits, target) +
                torch.nn.functional.cross_entropy(logits.t(), target)) / 2
    assert out['loss_itc'].item() == pytest.approx(expected.item(), rel=1e-5)
    # Rows 0 and 1 show one product: each is no negative of the other.
    same = head.loss(feats, dict(product_index=torch.tensor([0, 0, 2, 3])))
    masked = logits.clone()
    masked[0, 1] = masked[1, 0] = float('-inf')
    expected = (torch.nn.functional.cross_entropy(masked, target) +
                torch.nn.functional.cross_entropy(masked.t(), target)) / 2
    assert same['loss_itc'].item() == pytest.approx(expected.item(), rel=1e-5)
    embeds = head.predict(feats, {})
    assert embeds['itc_image_embeds'].shape == (4, 4)
    assert torch.allclose(embeds['itc_text_embeds'].norm(dim=1), torch.ones(4))


def test_unmask_input_ids_restores_the_caption():
    ids = torch.tensor([[2, 7, 4, 9, 3, 0]])  # 4 = [MASK] at position 2
    positions = torch.tensor([[2, 0]])
    labels = torch.tensor([[8, -100]])  # the second slot is unused
    assert unmask_input_ids(ids, positions, labels).tolist() == \
        [[2, 7, 8, 9, 3, 0]]


def test_mvlt_trains_itc_on_unmasked_matched_pairs(nano_config):
    cfg = copy.deepcopy(nano_config.model)
    cfg.heads.itc = NANO_ITC
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    dataset = DATASETS.build(nano_config.train_dataloader.dataset)
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(8)]), training=True)
    inputs = data['inputs']
    seen = []
    original = model.backbone.forward

    def spy(images=None, input_ids=None, attention_mask=None, **kwargs):
        seen.append((images, input_ids))
        return original(images, input_ids, attention_mask, **kwargs)

    model.backbone.forward = spy
    losses = model(**data, mode='loss')
    assert {'loss_itc', 'loss_itm', 'loss_mlm', 'loss_mir'} <= set(losses)
    assert torch.isfinite(losses['loss_itc'])
    # An image-only and a text-only pass of the B samples, on the unmasked
    # image and caption (they also give the ITC-hard sampler its
    # similarities), then the joint pass of the ITM pairs.
    assert len(seen) == 3
    rows = inputs['images'].shape[0]
    images, ids = seen[0]
    assert ids is None and torch.equal(images, inputs['target_images'])
    images, ids = seen[1]
    assert images is None and ids.shape[0] == rows
    assert not (ids == model.data_preprocessor.mask_token_id).any()
    images, ids = seen[2]
    assert images is not None and ids is not None

    # Predicting ITC embeddings of an image-only batch runs one image pass.
    seen.clear()
    model.eval()
    with torch.no_grad():
        out = model.predict_outputs(
            dict(images=inputs['target_images'][:3]), tasks=('itc', ))
    assert set(out) == {'itc_image_embeds'} and len(seen) == 1
    assert out['itc_image_embeds'].shape == (3, 32)


@pytest.mark.slow
def test_itc_loss_decreases_when_overfitting(nano_config):
    cfg = copy.deepcopy(nano_config.model)
    cfg.heads = dict(itc=NANO_ITC)
    cfg.predict_tasks = ('itc', )
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    dataset = DATASETS.build(nano_config.train_dataloader.dataset)
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(0, 16, 2)]), training=True)
    # A small lr: at 2e-3 this tiny model collapses to uniform similarities.
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    history = []
    for _ in range(60):
        loss = model(**data, mode='loss')['loss_itc']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert history[-1] < 0.5 * history[0]
