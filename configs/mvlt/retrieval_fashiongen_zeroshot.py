# Zero-shot TIR / ITR on Fashion-Gen (paper table 2) with a pre-trained MVLT:
#   python tools/misc/make_retrieval_protocol.py \
#       configs/mvlt/retrieval_fashiongen_zeroshot.py
#   python tools/test.py configs/mvlt/retrieval_fashiongen_zeroshot.py \
#       work_dirs/pretrain_fashiongen/epoch_150.pth [--show-dir vis/]
# A caption shared by two products counts as a positive of both (see
# RetrievalTestLoop's identical_captions switch for the naive protocol).
_base_ = [
    '../_base_/models/mvlt_pvt-tiny.py',
    '../_base_/datasets/fashiongen.py',
    '../_base_/tasks/retrieval_zeroshot.py',
    '../_base_/default_runtime.py',
]

# Fashion-Gen's test split is the release's validation file.
test_cfg = dict(
    protocol_file='data/fashiongen/protocols/fashiongen-101_validation.json')
train_dataloader = None
val_dataloader = None
