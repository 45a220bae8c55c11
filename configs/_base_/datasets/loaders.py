# Loader settings shared by the data set bases, which inherit this file and
# add each loader's `dataset` (and their own differences). Test loaders read
# in order, their data sets in test mode; the validation loader is the test
# loader unless a base says otherwise. The default pipeline reads image files
# and packs them with their caption (the model's data preprocessor resizes
# and tokenises); bases of other storage replace it.
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='PackMVLTInputs'),
]
test_pipeline = train_pipeline

test_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(test_mode=True, pipeline=test_pipeline))
val_dataloader = test_dataloader
train_dataloader = dict(
    test_dataloader,
    pin_memory=True,
    # Saves its position in checkpoints: a resumed run continues mid-epoch.
    sampler=dict(type='ResumableSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
