# The benchmark model with activation checkpointing in every PVT-VL stage
# (backbone.with_cp): compared with mvlt_pvt-tiny_256px.py by
#   benchmark.py mvlt_pvt-tiny_256px.py --baseline THIS (docs/benchmark.md).
_base_ = ['./mvlt_pvt-tiny_256px.py']

model = dict(backbone=dict(with_cp=True))
