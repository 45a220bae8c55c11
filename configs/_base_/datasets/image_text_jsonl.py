# Image-caption pairs from JSON-lines files (ImageTextDataset).
_base_ = ['./loaders.py']

data_root = 'data/image_text/'

train_dataloader = dict(
    dataset=dict(
        type='ImageTextDataset',
        data_root=data_root,
        ann_file='train.jsonl',
        data_prefix=dict(img_path='images/')))
test_dataloader = dict(
    dataset=dict(train_dataloader['dataset'], ann_file='test.jsonl'))
val_dataloader = test_dataloader
