# The synthetic Fashion-Gen of drawn garments (offline demo and tests), in
# the release's HDF5 layout, with its own WordPiece vocabulary. Make it with
#   python tools/misc/make_synthetic_fashiongen.py data/synthetic_fashiongen
# 64 px images and captions of 32 word pieces keep CPU training fast.
_base_ = ['./fashiongen.py']

data_root = 'data/synthetic_fashiongen/'
tokenizer = dict(vocab_file=data_root + 'vocab.txt')
img_size = 64
text_len = 32

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
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    pin_memory=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
val_dataloader = test_dataloader
