# The nano model of mvlt_nano_cpu_jsonl.py on image-caption tar shards
# (ShardDataset) as tools/dataset_converters write them: DATA_ROOT/train/,
# DATA_ROOT/test/ (shards + manifest.json) and DATA_ROOT/vocab.txt. The
# dataset dicts are replaced whole (_delete_), so nothing of the JSON-lines
# data set (ann_file, data_prefix) is kept by inheritance. Used by the tests
# and by docs/custom_data.md.
_base_ = ['./mvlt_nano_cpu_jsonl.py']

data_root = 'data/nano_shards/'
shard_dataset = dict(
    _delete_=True,
    type='ShardDataset',
    data_root=data_root,
    manifest='test/manifest.json',
    label_map_from='train/manifest.json',
    test_mode=True,
    pipeline={{_base_.test_pipeline}})

model = dict(
    data_preprocessor=dict(tokenizer=dict(vocab_file=data_root + 'vocab.txt')))
test_dataloader = dict(dataset=shard_dataset)
train_dataloader = dict(
    dataset=dict(
        shard_dataset,
        manifest='train/manifest.json',
        test_mode=False,
        on_bad_sample='skip',
        pipeline={{_base_.train_pipeline}}))
