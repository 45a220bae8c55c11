# Fashion-Gen 2018 read from the release's HDF5 files (FashionGenDataset):
# data/fashiongen/fashiongen_256_256_{train,validation}.h5. Images are
# 256 x 256; the white product-photo background is cropped first (as in the
# authors' reference code), then the crop is resized. Captions are the
# product descriptions, L = 128 word pieces of bert-base-uncased.
data_root = 'data/fashiongen/'
tokenizer = dict(vocab_file='data/bert-base-uncased/vocab.txt')
img_size = 256
text_len = 128
train_file = 'fashiongen_256_256_train.h5'
val_file = 'fashiongen_256_256_validation.h5'
# ('input_name', 'input_description') puts the product name first.
caption_fields = ('input_description', )

train_pipeline = [
    dict(type='LoadFashionGenImage'),
    dict(type='ForegroundCrop', threshold=240, margin=0.03),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='Tokenize', tokenizer=tokenizer, max_length=text_len),
    dict(
        type='PackMVLTInputs',
        meta_keys=('sample_idx', 'h5_row', 'caption', 'product_id',
                   'ori_shape', 'img_shape')),
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
        type='FashionGenDataset',
        data_root=data_root,
        ann_file=train_file,
        caption_fields=caption_fields,
        # A week-long run should not end at one unreadable image or empty
        # description: such samples are logged, counted in the training log
        # and replaced; many in a row still stop the run. Evaluation keeps
        # the default 'raise' so that no test sample goes missing silently.
        on_bad_sample='skip',
        pipeline=train_pipeline))

# The validation split takes its class ids from the training split's names;
# a name the training split lacks is an error (set unknown_label='ignore' to
# give such rows label -1 instead).
test_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='FashionGenDataset',
        data_root=data_root,
        ann_file=val_file,
        label_map_from=train_file,
        unknown_label='error',
        caption_fields=caption_fields,
        test_mode=True,
        pipeline=test_pipeline))
val_dataloader = test_dataloader
