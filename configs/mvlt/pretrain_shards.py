# The pre-training recipe of pretrain_fashiongen.py reading image-caption
# tar shards instead of the HDF5 release: the shards of
# tools/dataset_converters/fashiongen_to_shards.py (or img2dataset's) under
# data/fashiongen_shards/{train,test}/ with their manifests. The loader
# decodes the JPEG members (LoadImage); cropping, resizing and tokenising
# stay in the model's data preprocessor, as for the HDF5 files.
_base_ = ['./pretrain_fashiongen.py']

data_root = 'data/fashiongen_shards/'
shard_dataset = dict(
    _delete_=True,
    type='ShardDataset',
    data_root=data_root,
    manifest='train/manifest.json',
    on_bad_sample='skip',
    pipeline=[dict(type='LoadImage'),
              dict(type='PackMVLTInputs')])
train_dataloader = dict(dataset=shard_dataset)
test_dataloader = dict(
    dataset=dict(
        shard_dataset,
        manifest='test/manifest.json',
        label_map_from='train/manifest.json',
        on_bad_sample='raise',
        test_mode=True))
# Zero-shot retrieval lists for these shards: python
# tools/misc/make_retrieval_protocol.py configs/mvlt/pretrain_shards.py
test_cfg = dict(protocol_file=data_root +
                'protocols/fashiongen-101_validation.json')
