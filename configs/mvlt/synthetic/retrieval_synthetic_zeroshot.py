# Zero-shot TIR / ITR (101 candidates) on the synthetic Fashion-Gen of the
# offline demo, with the demo's small model; the same task as
# configs/mvlt/retrieval_fashiongen_zeroshot.py.
#   python tools/misc/make_synthetic_fashiongen.py data/synthetic_fashiongen
#   python tools/misc/make_retrieval_protocol.py \
#       configs/mvlt/synthetic/retrieval_synthetic_zeroshot.py
#   python tools/test.py \
#       configs/mvlt/synthetic/retrieval_synthetic_zeroshot.py DEMO_CKPT
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/synthetic_fashiongen.py',
    '../../_base_/tasks/retrieval_zeroshot.py',
    '../../_base_/default_runtime.py',
]

test_cfg = dict(
    protocol_name='synthetic-101',
    protocol_file='data/synthetic_fashiongen/protocols/'
    'synthetic-101_validation.json')
train_dataloader = None
val_dataloader = None
