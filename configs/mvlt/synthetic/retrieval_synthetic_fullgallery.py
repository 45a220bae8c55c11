# Full-gallery TIR / ITR on the synthetic Fashion-Gen (every caption against
# every validation image and back). With the demo's checkpoint (trained with
# the ITC head) test_cfg.mode='auto' ranks by ITC and re-scores the top
# rerank_k by ITM; a checkpoint without the head is scored exactly.
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/synthetic_fashiongen.py',
    '../../_base_/tasks/retrieval_fullgallery.py',
    '../../_base_/default_runtime.py',
]

model = dict(heads=dict(itc={{_base_.itc_head}}))
test_cfg = dict(protocol_name='synthetic-full', rerank_k=32)
train_dataloader = None
val_dataloader = None
