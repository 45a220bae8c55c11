# The straightforward implementation of the same model, for side-by-side
# speed comparisons (mvlt.utils.benchmark.baseline_config makes the same
# change to any config): MVLT(compute_mode='baseline') switches every part
# (eager attention, MLM logits at every position of every row, every head in
# predict mode, no padding trimming) and AdamW runs torch's default loop.
# The losses and scores equal the fast path's.
_base_ = ['./mvlt_pvt-tiny_256px.py']

model = dict(compute_mode='baseline')
optim_wrapper = dict(optimizer=dict(fused=None, foreach=None))
