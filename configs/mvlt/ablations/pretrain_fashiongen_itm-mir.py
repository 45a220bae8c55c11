# Paper table 3d (D2): ITM + MIR, no MLM head (captions stay masked as in the
# full recipe so that only the objectives change).
_base_ = '../pretrain_fashiongen.py'

model = dict(heads=dict(mlm=None))
