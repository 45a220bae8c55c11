# finetune_shop_shards.py with the nano model of the tests' config
# tests/configs/mvlt_nano_cpu_jsonl.py (half the demo widths) and a few
# iterations: what the guide's slow test
# (tests/test_tools/test_custom_data_guide.py) trains on CPU in minutes.
_base_ = ['./finetune_shop_shards.py']

model = dict(
    backbone=dict(
        arch=dict(embed_dims=(16, 32, 64, 128), sr_ratios=(4, 2, 1, 1))),
    heads=dict(
        mir=dict(decoder=dict(in_channels=(16, 32, 64, 128))),
        itm=dict(neck=dict(in_channels=128, out_channels=64)),
        mlm=dict(neck=dict(in_channels=128, out_channels=64)),
        itc=dict(visual_channels=128, text_channels=128, embed_dim=32)))
train_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False)
test_dataloader = dict(num_workers=0, persistent_workers=False)
max_iters = 60
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
