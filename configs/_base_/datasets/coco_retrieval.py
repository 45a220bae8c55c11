# MS-COCO 2014 retrieval on Karpathy's splits (COCORetrievalDataset):
#   data/coco/dataset_coco.json                 Karpathy's split file
#   data/coco/annotations/captions_{train,val}2014.json   official captions
#   data/coco/train2014/, data/coco/val2014/    images
# Train on train + restval (113,287 images), validate on Karpathy's val,
# test on the 5K test split (5,000 images, 25,010 captions). Captions come
# from the split file's raw sentences; the official files check them.
# 384 px square images as in ViLT-style COCO fine-tuning, L = 40.
data_root = 'data/coco/'
tokenizer = dict(vocab_file='data/bert-base-uncased/vocab.txt')
img_size = 384
text_len = 40
ann_file = 'dataset_coco.json'
caption_files = dict(
    train2014='annotations/captions_train2014.json',
    val2014='annotations/captions_val2014.json')

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='Tokenize', tokenizer=tokenizer, max_length=text_len),
    dict(type='PackMVLTInputs'),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    pin_memory=True,
    # Saves its position in checkpoints: a resumed run continues mid-epoch.
    sampler=dict(type='ResumableSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='COCORetrievalDataset',
        data_root=data_root,
        ann_file=ann_file,
        split=('train', 'restval'),
        caption_files=caption_files,
        pipeline=train_pipeline))

val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='COCORetrievalDataset',
        data_root=data_root,
        ann_file=ann_file,
        split='val',
        caption_files=caption_files,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='COCORetrievalDataset',
        data_root=data_root,
        ann_file=ann_file,
        split='test',
        caption_files=caption_files,
        test_mode=True,
        pipeline=test_pipeline))
