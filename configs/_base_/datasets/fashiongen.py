# Fashion-Gen 2018 read from the release's HDF5 files (FashionGenDataset):
# data/fashiongen/fashiongen_256_256_{train,validation}.h5, 256 x 256 images,
# captions = the product descriptions. The loader only reads image rows and
# packs them with the caption text; the model's data preprocessor crops the
# white background, resizes and tokenises (once per batch, on its device).
_base_ = ['./loaders.py']

data_root = 'data/fashiongen/'
train_file = 'fashiongen_256_256_train.h5'
val_file = 'fashiongen_256_256_validation.h5'
# ('input_name', 'input_description') puts the product name first.
caption_fields = ('input_description', )

train_pipeline = [
    dict(type='LoadFashionGenImage'),
    dict(
        type='PackMVLTInputs',
        meta_keys=('sample_idx', 'h5_row', 'caption', 'product_id',
                   'ori_shape', 'img_shape')),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    dataset=dict(
        type='FashionGenDataset',
        data_root=data_root,
        ann_file=train_file,
        caption_fields=caption_fields,
        # A week-long run should not end at one unreadable image or empty
        # description: such samples are logged, counted in the training log
        # and replaced; many in a row still stop the run. The test split
        # raises instead, so that no test sample goes missing silently.
        on_bad_sample='skip',
        pipeline=train_pipeline))

# The validation split takes its class ids from the training split's names;
# a name the training split lacks is an error (set unknown_label='ignore' to
# give such rows label -1 instead).
test_dataloader = dict(
    dataset=dict(
        train_dataloader['dataset'],
        ann_file=val_file,
        label_map_from=train_file,
        unknown_label='error',
        on_bad_sample='raise',
        pipeline=test_pipeline))
val_dataloader = test_dataloader
