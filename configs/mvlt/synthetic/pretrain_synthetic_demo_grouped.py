# The demo's pre-training with batches of 4 runs of 16 images of one
# sub-category (garment type and length): an image's in-batch negatives then
# hold about 1.4 rows of its own garment and colour in another pattern (0.5
# with uniform batches), the near misses ITC has to tell apart and
# ITCHardNegatives draws for ITM. Measured in docs/alignment.md (seeds 0 and
# 4, 1 thread): ITC learns patterns sooner, ITM later than with the demo's
# uniform batches.
_base_ = ['./pretrain_synthetic_demo.py']

train_dataloader = dict(
    sampler=dict(
        type='GroupedSampler', group_by='subcategory_label', group_size=16))
