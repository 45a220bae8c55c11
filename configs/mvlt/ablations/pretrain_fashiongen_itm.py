# Paper table 3d (D1): ITM only. The MIR and MLM heads are not built; the
# inputs stay masked as in the full recipe so that only the objectives change.
_base_ = '../pretrain_fashiongen.py'

model = dict(heads=dict(mir=None, mlm=None))
