# MVLT with the PVT-Tiny encoder (paper table 1) and the three pre-training
# heads: MIR (w1 = 10), ITM (w2 = 1), MLM (w3 = 1).
model = dict(
    type='MVLT',
    data_preprocessor=dict(
        type='MVLTDataPreprocessor',
        # What the model sees, stated once (the backbone takes img_size and
        # text_len from here): the bert-base-uncased vocabulary (30,522
        # entries, read locally), captions of L = 128 word pieces, 256 px
        # images whose white product-photo background is cropped first (as
        # the authors' reference code does; docs/method.md section 1).
        tokenizer=dict(vocab_file='data/bert-base-uncased/vocab.txt'),
        text_len=128,
        img_size=256,
        foreground_crop=dict(threshold=240, margin=0.03),
        mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375),
        # random-grid: alpha = 4 patches of P = 4 px -> 16 px units, r_v = 0.5
        mask_generator=dict(
            type='RandomGridMask',
            mask_ratio=0.5,
            patch_size=4,
            unit_scale=4,
            fill_value=1e-6),
        mlm_mask_ratio=0.15),
    # ITM negatives: half of the images get the caption of another product,
    # drawn at random (the paper; the authors' code uses half as well).
    itm_sampler=dict(type='RandomNegatives', neg_ratio=0.5),
    backbone=dict(
        type='PVTVL',
        arch='tiny',
        img_size=None,
        text_len=None,
        vocab_size=30522,
        drop_path_rate=0.1,
        use_key_padding_mask=True),
    heads=dict(
        mir=dict(
            type='MIRHead',
            decoder=dict(
                type='UNetDecoder',
                in_channels=(64, 128, 320, 512),
                channels=(256, 128, 64)),
            loss_weight=10.0,
            loss_region='all'),
        itm=dict(
            type='ITMHead',
            neck=dict(type='CLSPooler', in_channels=512, out_channels=768),
            loss_weight=1.0),
        mlm=dict(
            type='MLMHead',
            neck=dict(
                type='TokenProjector', in_channels=512, out_channels=768),
            vocab_size=30522,
            loss_weight=1.0),
    ),
)

# The ITC head (beyond the paper: docs/alignment.md), not part of the paper's
# model. Configs that train it or re-rank retrieval with it add
# model.heads.itc={{_base_.itc_head}}; stage 4 of PVT-VL is 512 wide, the
# joint embedding 256 (BLIP's width).
itc_head = dict(
    type='ITCHead', visual_channels=512, text_channels=512, embed_dim=256)
