# "Train on your own catalogue" (docs/custom_data.md): fine-tune the demo
# model (configs/mvlt/synthetic/pretrain_synthetic_demo.py, 64 px, MIR + ITM
# + MLM + ITC) on a shop's products converted to tar shards, then test
# retrieval against the whole held-out gallery. data_root holds what the
# guide's commands write:
#   train/, test/      tools/dataset_converters/csv_to_shards.py (shards +
#                      manifest.json; test = held-out products)
#   vocab/vocab.txt, vocab/checkpoint.pth
#                      tools/misc/extend_vocab.py (the checkpoint's
#                      vocabulary plus the shop's new word pieces)
#   python tools/train.py configs/mvlt/shop/finetune_shop_shards.py
#   python tools/test.py configs/mvlt/shop/finetune_shop_shards.py \
#       work_dirs/finetune_shop_shards/iter_300.pth
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/shards.py',
    '../../_base_/tasks/retrieval_fullgallery.py',
    '../../_base_/schedules/adamw_cosine_150e.py',
    '../../_base_/default_runtime.py',
]

data_root = 'data/shop/'
train_dataloader = dict(
    batch_size=32, num_workers=2, dataset=dict(data_root=data_root))
test_dataloader = dict(
    batch_size=32, num_workers=2, dataset=dict(data_root=data_root))
val_dataloader = val_cfg = val_evaluator = None

model = dict(
    heads=dict(itc={{_base_.itc_head}}),
    # The extended vocabulary (old ids kept, the shop's pieces appended);
    # the model's tables take its size.
    data_preprocessor=dict(
        tokenizer=dict(vocab_file=data_root + 'vocab/vocab.txt')))
# The demo checkpoint with its word-piece tables grown to that vocabulary.
load_from = data_root + 'vocab/checkpoint.pth'

# Retrieval against every held-out product (no 101-candidate lists): each
# held-out caption ranks the whole held-out gallery and vice versa.
test_cfg = dict(protocol_name='shop-full', rerank_k=32)

max_iters = 300
optim_wrapper = dict(optimizer=dict(lr=2e-4, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - 20,
        eta_min=1e-6,
        by_epoch=False,
        begin=20,
        end=max_iters),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(base_batch_size=32, enable=False)
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    # The shop's categories are not the checkpoint's: the check that stops
    # shifted class ids only warns. Safe here because no head of this model
    # predicts categories (retrieval fine-tune); with a category head, give
    # it the new number of classes and it is trained anew.
    label_map_check=dict(on_mismatch='warn'))
