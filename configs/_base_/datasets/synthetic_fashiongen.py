# The synthetic Fashion-Gen of drawn garments (offline demo and tests), in
# the release's HDF5 layout, with its own WordPiece vocabulary (the demo
# model, configs/_base_/models/mvlt_synthetic-demo.py, reads it). Make it with
#   python tools/misc/make_synthetic_fashiongen.py data/synthetic_fashiongen
_base_ = ['./fashiongen.py']

data_root = 'data/synthetic_fashiongen/'

test_dataloader = dict(
    batch_size=64, num_workers=2, dataset=dict(data_root=data_root))
val_dataloader = test_dataloader
train_dataloader = dict(test_dataloader, pin_memory=False)
