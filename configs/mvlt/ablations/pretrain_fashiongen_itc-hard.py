# Beyond the paper, where its successors went (ALBEF / BLIP; FashionViL,
# FashionSAP, FAME-ViL): an image-text contrastive (ITC) objective on
# image-only and text-only passes of the encoder (learnable temperature, as
# in BLIP) trained beside MIR + ITM + MLM, and ITM negatives drawn by ITC
# similarity (the captions the model currently confuses with the image)
# instead of at random. The ITC head also lets retrieval re-rank only the
# ITC top-k with ITM (test_cfg.mode='auto' / 'rerank').
_base_ = '../pretrain_fashiongen.py'

model = dict(
    heads=dict(itc={{_base_.itc_head}}),
    itm_sampler=dict(_delete_=True, type='ITCHardNegatives', neg_ratio=0.5))
