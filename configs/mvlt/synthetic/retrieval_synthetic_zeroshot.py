# Zero-shot TIR / ITR on the synthetic Fashion-Gen of the offline demo
# (101-candidate protocol, the same code path as
# configs/mvlt/retrieval_fashiongen_zeroshot.py) with the demo's small model.
#   python tools/misc/make_synthetic_fashiongen.py data/synthetic_fashiongen
#   python tools/misc/make_retrieval_protocol.py \
#       configs/mvlt/synthetic/retrieval_synthetic_zeroshot.py
#   python tools/test.py \
#       configs/mvlt/synthetic/retrieval_synthetic_zeroshot.py DEMO_CKPT
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/synthetic_fashiongen.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    data_preprocessor=dict(tokenizer={{_base_.tokenizer}}),
    backbone=dict(
        img_size={{_base_.img_size}},
        text_len={{_base_.text_len}},
        init_cfg=None),
    predict_tasks=('itm', ))

protocol_file = \
    'data/synthetic_fashiongen/protocols/synthetic-101_validation.json'
test_cfg = dict(
    type='RetrievalTestLoop',
    protocol='candidates',
    protocol_file=protocol_file,
    protocol_name='synthetic-101',
    split='validation',
    mode='exact',
    pair_batch_size=256)
test_evaluator = dict(
    type='RetrievalMetric', protocol='synthetic-101', split='validation')

train_dataloader = None
val_dataloader = None
