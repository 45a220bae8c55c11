# Zero-shot text->image (TIR) and image->text (ITR) retrieval on Fashion-Gen
# (paper table 2, SPEC section 4): a pre-trained MVLT, no fine-tuning. Each
# of 1,000 queries per direction is ranked against 101 candidates (its
# positive and 100 negatives of the same sub-category) by the ITM matching
# probability; R@1 / R@5 / R@10 and SumR = R@5 + R@10 (in %).
#
# Draw the candidate lists once per split (seeded; the file records the
# data set's content hash and any sub-category filled from its category):
#   python tools/misc/make_retrieval_protocol.py \
#       configs/mvlt/retrieval_fashiongen_zeroshot.py
# then:
#   python tools/test.py configs/mvlt/retrieval_fashiongen_zeroshot.py \
#       work_dirs/pretrain_fashiongen/epoch_150.pth [--show-dir vis/]
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/fashiongen.py',
    '../_base_/default_runtime.py',
]

model = dict(
    data_preprocessor=dict(tokenizer={{_base_.tokenizer}}),
    backbone=dict(
        img_size={{_base_.img_size}},
        text_len={{_base_.text_len}},
        init_cfg=None),
    predict_tasks=('itm', ))

# Fashion-Gen's test split is the release's validation file.
protocol_file = 'data/fashiongen/protocols/fashiongen-101_validation.json'
test_cfg = dict(
    type='RetrievalTestLoop',
    protocol='candidates',
    protocol_file=protocol_file,
    protocol_name='fashiongen-101',
    split='validation',
    mode='exact',
    pair_batch_size=256)
test_evaluator = dict(
    type='RetrievalMetric', protocol='fashiongen-101', split='validation')

# Test only.
train_dataloader = None
val_dataloader = None
