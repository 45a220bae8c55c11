# Image-caption tar shards (ShardDataset; img2dataset / WebDataset layout),
# as tools/dataset_converters/*_to_shards.py write them: OUT_DIR/train/ and
# OUT_DIR/test/, each with shard-NNNNN.tar and manifest.json
# (docs/custom_data.md). The pipeline decodes the member image (LoadImage)
# and packs it with its caption; the model's data preprocessor resizes and
# tokenises.
_base_ = ['./loaders.py']

data_root = 'data/shards/'

train_dataloader = dict(
    dataset=dict(
        type='ShardDataset',
        data_root=data_root,
        # The manifest lists the shards and their sample counts; or give
        # shards='train/shard-{00000..00009}.tar' (or 'pipe:CMD ...' for
        # object stores) with or without it.
        manifest='train/manifest.json',
        # An unreadable member or shard is logged, counted and replaced
        # (training); the test split raises instead.
        on_bad_sample='skip'))
test_dataloader = dict(
    dataset=dict(
        train_dataloader['dataset'],
        manifest='test/manifest.json',
        # Class ids of the training split (a category the test split alone
        # has is an error; unknown_label='ignore' gives it label -1).
        label_map_from='train/manifest.json',
        on_bad_sample='raise'))
val_dataloader = test_dataloader
