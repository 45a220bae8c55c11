# The small MVLT of the offline demo on the synthetic Fashion-Gen (64 px,
# captions of 32 word pieces): widths 32 / 64 / 128 / 256, one block per
# stage, spatial reduction 2 in stage 1, ~1.3M parameters plus the heads.
# Measured for this project: a model of this shape learns retrieval of drawn
# garments on 2 CPU cores in about 10 minutes with the demo's recipe
# (configs/mvlt/synthetic/pretrain_synthetic_demo.py; per-seed figures in
# docs/alignment.md); lr 2e-3 did not learn in that time. vocab_size=None
# takes the size of the synthetic set's vocabulary.
_base_ = ['./mvlt_pvt-tiny.py']

model = dict(
    data_preprocessor=dict(
        tokenizer=dict(vocab_file='data/synthetic_fashiongen/vocab.txt'),
        text_len=32,
        img_size=64,
        # 8 px units at 64 px: 64 units per image, r_v = 0.5.
        mask_generator=dict(unit_scale=2)),
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=(32, 64, 128, 256),
            depths=(1, 1, 1, 1),
            num_heads=(1, 1, 2, 4),
            mlp_ratios=(4, 4, 4, 4),
            sr_ratios=(2, 1, 1, 1)),
        text_hidden=64,
        vocab_size=None,
        drop_path_rate=0.0),
    heads=dict(
        mir=dict(
            decoder=dict(
                in_channels=(32, 64, 128, 256), channels=(64, 32, 16))),
        itm=dict(neck=dict(in_channels=256, out_channels=128)),
        mlm=dict(
            neck=dict(in_channels=256, out_channels=128),
            hidden_size=64,  # = text_hidden: the decoder is tied
            vocab_size=None)))
# A 64-d ITC embedding of the 256-wide stage 4.
itc_head = dict(visual_channels=256, text_channels=256, embed_dim=64)
