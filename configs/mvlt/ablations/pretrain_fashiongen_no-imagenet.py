# Paper table 3e / table 4 (E1): no ImageNet PVT initialisation; the whole
# encoder starts from random weights.
_base_ = '../pretrain_fashiongen.py'

model = dict(backbone=dict(init_cfg=None))
