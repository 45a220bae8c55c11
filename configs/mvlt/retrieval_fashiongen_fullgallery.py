# Fashion-Gen retrieval against the whole validation gallery (FashionViL's
# second protocol); exact by default, or re-ranked with an ITC model:
#   python tools/test.py configs/mvlt/retrieval_fashiongen_fullgallery.py \
#       CKPT [--cfg-options test_cfg.mode=rerank test_cfg.num_queries=1000]
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/fashiongen.py',
    '../_base_/tasks/retrieval_fullgallery.py',
    '../_base_/default_runtime.py',
]

test_cfg = dict(protocol_name='fashiongen-full')
train_dataloader = None
val_dataloader = None
