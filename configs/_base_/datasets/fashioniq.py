# FashionIQ (Wu et al., CVPR 2021) read from the release layout
# (FashionIQDataset): data/fashioniq/captions/cap.{category}.{split}.json,
# image_splits/split.{category}.{split}.json and images/ASIN.jpg (or .png).
# A sample is a pair: the reference image, its two relative captions joined
# as "cap1 and cap2", and the target image (docs/tgir.md). Training lists
# every pair in both caption orders; the test split is the validation split
# (the released test captions have no targets).
_base_ = ['./loaders.py']

data_root = 'data/fashioniq/'

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadTargetImage'),
    dict(
        type='PackTGIRInputs',
        meta_keys=('sample_idx', 'img_path', 'target_img_path', 'caption',
                   'category', 'reference_id', 'target_id')),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    dataset=dict(
        type='FashionIQDataset',
        data_root=data_root,
        split='train',
        caption_order='both',
        pipeline=train_pipeline))
test_dataloader = dict(
    dataset=dict(
        train_dataloader['dataset'],
        split='val',
        caption_order='forward',
        pipeline=test_pipeline))
# Tested after training by tools/test.py (TGIRTestLoop), not validated.
val_dataloader = None
