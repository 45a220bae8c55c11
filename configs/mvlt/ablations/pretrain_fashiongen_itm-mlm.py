# Paper table 3d (D3): ITM + MLM, no MIR head (images stay masked as in the
# full recipe so that only the objectives change).
_base_ = '../pretrain_fashiongen.py'

model = dict(heads=dict(mir=None))
