# Fashion-Gen retrieval against the whole validation gallery (FashionViL's
# second protocol). The model carries the ITC head, so a checkpoint trained
# with it (ablations/pretrain_fashiongen_itc-hard.py) is ranked by ITC and its
# top rerank_k re-scored by ITM (test_cfg.mode='auto'); one without it is
# scored exactly by ITM:
#   python tools/test.py configs/mvlt/retrieval_fashiongen_fullgallery.py \
#       CKPT [--cfg-options test_cfg.num_queries=1000]
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/fashiongen.py',
    '../_base_/tasks/retrieval_fullgallery.py',
    '../_base_/default_runtime.py',
]

model = dict(heads=dict(itc={{_base_.itc_head}}))
test_cfg = dict(protocol_name='fashiongen-full')
train_dataloader = None
val_dataloader = None
