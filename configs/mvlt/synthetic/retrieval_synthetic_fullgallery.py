# Full-gallery TIR / ITR on the synthetic Fashion-Gen (every caption against
# every validation image and back); test_cfg.mode='rerank' needs a model
# trained with the ITC head.
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/synthetic_fashiongen.py',
    '../../_base_/tasks/retrieval_fullgallery.py',
    '../../_base_/default_runtime.py',
]

test_cfg = dict(protocol_name='synthetic-full', rerank_k=32)
train_dataloader = None
val_dataloader = None
