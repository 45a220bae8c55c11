# MS-COCO 2014 retrieval on Karpathy's splits (COCORetrievalDataset):
#   data/coco/dataset_coco.json                 Karpathy's split file
#   data/coco/annotations/captions_{train,val}2014.json   official captions
#   data/coco/train2014/, data/coco/val2014/    images
# Train on train + restval (113,287 images), validate on Karpathy's val,
# test on the 5K test split (5,000 images, 25,010 captions). Captions come
# from the split file's raw sentences; the official files check them. The
# model's data preprocessor resizes (384 px in the COCO configs) and
# tokenises.
_base_ = ['./loaders.py']

data_root = 'data/coco/'
ann_file = 'dataset_coco.json'
caption_files = dict(
    train2014='annotations/captions_train2014.json',
    val2014='annotations/captions_val2014.json')

train_dataloader = dict(
    dataset=dict(
        type='COCORetrievalDataset',
        data_root=data_root,
        ann_file=ann_file,
        split=('train', 'restval'),
        caption_files=caption_files))
val_dataloader = dict(dataset=dict(train_dataloader['dataset'], split='val'))
test_dataloader = dict(dataset=dict(train_dataloader['dataset'], split='test'))
