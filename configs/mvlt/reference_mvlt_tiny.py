# The model of the authors' reference implementation (GewelsJI/MVLT,
# "PVLT-tiny"), for checkpoints converted with
# tools/model_converters/mvlt_reference_to_mmengine.py:
# - [PAD] tokens take part in attention (no key padding mask);
# - MIR decodes V^2..V^4 with the reference's partial decoder (`t2i_head`)
#   and x8 bilinear up-sampling instead of the paper's U-Net;
# - ITM, MLM and category heads with the reference's LayerNorm epsilon
#   (1e-5, PyTorch's default) where the heads let it be set;
# - the reference's lr / weight decay (docs/method.md section 5, reference
#   code).
_base_ = './pretrain_fashiongen.py'

model = dict(
    backbone=dict(use_key_padding_mask=False, init_cfg=None),
    heads=dict(
        mir=dict(
            decoder=dict(
                _delete_=True,
                type='ReferencePartialDecoder',
                in_channels=(64, 128, 320, 512),
                channels=64,
                up_factor=8)),
        itm=dict(neck=dict(norm_eps=1e-5)),
        mlm=dict(neck=dict(norm_eps=1e-5), norm_eps=1e-5),
        # 48 categories / 122 sub-categories of Fashion-Gen; fine-tuned for
        # M-CR / S-CR, so not a pre-training objective.
        category=dict(
            type='CategoryHead',
            num_categories=48,
            num_subcategories=122,
            in_channels=512,
            hidden_channels=768)),
    train_objectives=('mir', 'itm', 'mlm'))

optim_wrapper = dict(optimizer=dict(lr=2.5e-4, weight_decay=0.01))
