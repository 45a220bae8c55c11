# Zero-shot category (4 garment types) and sub-category (8 type + length
# groups) recognition on the synthetic Fashion-Gen's validation split with
# the demo's pre-trained checkpoint (its ITC head), no fine-tuning:
#   python tools/test.py \
#       configs/mvlt/synthetic/recognition_synthetic_zeroshot.py DEMO_CKPT
# Class ids are fixed here (the names' order), and each class is said in the
# captions' own words (mvlt/datasets/synthetic/garments.py).
_base_ = [
    '../../_base_/models/mvlt_synthetic-demo.py',
    '../../_base_/datasets/synthetic_fashiongen.py',
    '../../_base_/tasks/recognition_zeroshot.py',
    '../../_base_/default_runtime.py',
]

categories = ('SHIRTS', 'DRESSES', 'PANTS', 'SKIRTS')
subcategories = ('LONG SLEEVE SHIRTS', 'SHORT SLEEVE SHIRTS', 'LONG DRESSES',
                 'SHORT DRESSES', 'TROUSERS', 'SHORTS', 'LONG SKIRTS',
                 'SHORT SKIRTS')
# Prompts in the captions' form ("A short red dotted dress in crêpe."):
# the averaged embedding of the type said alone and in a caption.
zero_shot_templates = ['{}', 'a {}.']
model = dict(
    heads=dict(
        itc={{_base_.itc_head}},
        zero_shot=dict(
            _base_.zero_shot_head,
            classes=dict(
                category=['shirt', 'dress', 'trousers', 'skirt'],
                subcategory=[
                    'long-sleeved shirt', 'short-sleeved shirt', 'long dress',
                    'short dress', 'long trousers', 'short trousers',
                    'long skirt', 'short skirt'
                ]),
            templates=zero_shot_templates)))
test_dataloader = dict(
    dataset=dict(
        metainfo=dict(categories=categories, subcategories=subcategories)))
train_dataloader = None
val_dataloader = None
