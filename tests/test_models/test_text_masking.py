"""BERT masking statistics."""
import torch

from mvlt.models.utils import bert_mask_tokens, num_mask_slots

PAD, CLS, SEP, MASK = 0, 2, 3, 4
VOCAB = 1000


def _captions(batch=256, length=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, length - 1, (batch, ), generator=gen)
    ids = torch.randint(10, VOCAB, (batch, length), generator=gen)
    positions = torch.arange(length)[None]
    ids[:, 0] = CLS
    ids = torch.where(positions == lengths[:, None], torch.full_like(ids, SEP),
                      ids)
    ids = torch.where(positions > lengths[:, None], torch.full_like(ids, PAD),
                      ids)
    attention = (ids != PAD).long()
    maskable = attention.bool() & (ids != CLS) & (ids != SEP)
    return ids, attention, maskable


def test_bert_masking_statistics_over_many_draws():
    ids, _, maskable = _captions()
    gen = torch.Generator().manual_seed(1)
    chosen = to_mask = to_random = kept = total = 0
    for _ in range(40):
        out = bert_mask_tokens(
            ids, maskable, MASK, VOCAB, mask_ratio=0.15, generator=gen)
        active = out.labels != -100
        originals = out.labels[active]
        new = out.input_ids.gather(1, out.positions)[active]
        chosen += int(active.sum())
        total += int(maskable.sum())
        to_mask += int((new == MASK).sum())
        kept += int((new == originals).sum())
        to_random += int(((new != MASK) & (new != originals)).sum())
        # Special tokens and padding are never touched.
        assert torch.equal(out.input_ids[~maskable], ids[~maskable])
        changed = out.input_ids != ids
        assert not (changed & ~maskable).any()
        # Labels hold the original id of every chosen position.
        assert torch.equal(originals, ids.gather(1, out.positions)[active])
    assert abs(chosen / total - 0.15) < 0.01
    # A random replacement may hit the original id (1 / VOCAB): negligible.
    assert abs(to_mask / chosen - 0.8) < 0.03
    assert abs(to_random / chosen - 0.1) < 0.03
    assert abs(kept / chosen - 0.1) < 0.03


def test_masking_shapes_are_static_and_reproducible():
    ids, _, maskable = _captions(batch=8, length=128)
    a = bert_mask_tokens(
        ids, maskable, MASK, VOCAB, generator=torch.Generator().manual_seed(3))
    b = bert_mask_tokens(
        ids, maskable, MASK, VOCAB, generator=torch.Generator().manual_seed(3))
    assert a.positions.shape == (8, num_mask_slots(128, 0.15)) == (8, 19)
    assert torch.equal(a.input_ids, b.input_ids)
    assert torch.equal(a.labels, b.labels)
    # Each caption's active slots are distinct maskable positions.
    for row in range(8):
        active = a.positions[row][a.labels[row] != -100]
        assert len(set(active.tolist())) == len(active)
        assert maskable[row, active].all()
