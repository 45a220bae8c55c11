# Image-caption pairs from JSON-lines files (ImageTextDataset).
data_root = 'data/image_text/'
tokenizer = dict(vocab_file='data/bert-base-uncased/vocab.txt')
img_size = 256
text_len = 128

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
        type='ImageTextDataset',
        data_root=data_root,
        ann_file='train.jsonl',
        data_prefix=dict(img_path='images/'),
        pipeline=train_pipeline))

test_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='ImageTextDataset',
        data_root=data_root,
        ann_file='test.jsonl',
        data_prefix=dict(img_path='images/'),
        test_mode=True,
        pipeline=test_pipeline))
val_dataloader = test_dataloader
