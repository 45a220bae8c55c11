# The straightforward implementation of the same model, for side-by-side
# speed comparisons (tools/analysis_tools/benchmark.py): eager attention,
# plain MLPs (no GELU recomputation, no oneDNN products), MLM logits at every
# position of every row, every head in predict, [PAD] columns kept, and
# torch's default AdamW loop. The losses and scores equal the fast path's.
_base_ = ['./mvlt_pvt-tiny_256px.py']

model = dict(
    trim_padding=False,
    predict_tasks=('mir', 'itm', 'mlm'),
    backbone=dict(attn_impl='eager', recompute_gelu=False, onednn=False),
    heads=dict(mlm=dict(logits_at='all')))
optim_wrapper = dict(optimizer=dict(fused=None, foreach=None))
