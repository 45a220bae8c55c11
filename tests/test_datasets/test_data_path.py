"""The loader's data path: captions read once per distinct text, image rows
read a batch at a time, tokens cached per caption; nothing stale after a
change of file or vocabulary."""
import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch

from mvlt.datasets import FashionGenDataset
from mvlt.datasets.fashiongen import decode_text
from mvlt.datasets.transforms import Tokenize
from mvlt.datasets.transforms.loading import close_hdf5, read_image_rows
from mvlt.registry import MODELS
from mvlt.text import build_tokenizer, build_vocab
from mvlt.text.tokenizer import CaptionEncoder, encode_captions
from mvlt.utils import register_all_modules

register_all_modules()

PIPELINE = [dict(type='LoadFashionGenImage'), dict(type='PackMVLTInputs')]


def _dataset(path: str, **kwargs) -> FashionGenDataset:
    return FashionGenDataset(ann_file=path, pipeline=PIPELINE, **kwargs)


def _row_caption(path: str, row: int, fields: tuple) -> str:
    """A row's caption read from its cells, as the data set did per
    sample before the caption table."""
    with h5py.File(path, 'r') as f:
        parts = [decode_text(f[key][row, 0]) for key in fields]
    parts = [p.rstrip('. ') for p in parts[:-1] if p.rstrip('. ')] + \
        parts[-1:]
    return '. '.join(parts)


@pytest.mark.parametrize('fields', [('input_description', ),
                                    ('input_name', 'input_description')])
def test_caption_table_equals_per_row_reads(synthetic_fashiongen, fields):
    path = synthetic_fashiongen['train']
    dataset = _dataset(path, caption_fields=fields)
    captions = [
        dataset.get_data_info(i)['caption'] for i in range(len(dataset))
    ]
    assert captions == [
        _row_caption(path,
                     dataset.get_data_info(i)['h5_row'], fields)
        for i in range(len(dataset))
    ]
    # One entry per distinct text: a product's photos share it.
    assert len(
        dataset._captions
    ) == synthetic_fashiongen['num_products']['train'] < len(dataset)


def test_batched_reads_give_the_samples_of_single_reads(synthetic_fashiongen):
    dataset = _dataset(synthetic_fashiongen['train'])
    for indices in ([5, 0, 17, 3, 3], list(range(8, 20)), [len(dataset) - 1]):
        batch = dataset.__getitems__(indices)
        for index, sample in zip(indices, batch):
            single = dataset[index]
            assert torch.equal(sample['inputs']['images'],
                               single['inputs']['images'])
            assert sample['inputs']['captions'] == \
                single['inputs']['captions']
        assert dataset._prefetched == {}  # dropped after the batch


def test_row_reads_equal_hdf5_for_every_layout(synthetic_fashiongen, tmp_path):
    chunked = synthetic_fashiongen['train']
    contiguous = str(tmp_path / 'contiguous.h5')
    with h5py.File(chunked, 'r') as src, h5py.File(contiguous, 'w') as dst:
        images = src['input_image'][:]
        # One deflated chunk per row (the fast path) vs a plain array.
        assert src['input_image'].chunks == (1, ) + images.shape[1:]
        dst['input_image'] = images
    rows = [7, 2, 3, 4, 9, 2]
    for path in (chunked, contiguous):
        read = read_image_rows(path, 'input_image', rows)
        assert sorted(read) == [2, 3, 4, 7, 9]
        for row, image in read.items():
            assert np.array_equal(image, images[row])
            assert image.flags.writeable
        with pytest.raises(IndexError, match=f'row {len(images)} is outside'):
            read_image_rows(path, 'input_image', [0, len(images)])
        close_hdf5(path)


def test_new_file_gives_new_captions(synthetic_fashiongen, tmp_path):
    """Captions are read from the file each time a data set is built:
    nothing outlives a change of the file."""
    path = str(tmp_path / 'copy.h5')
    shutil.copyfile(synthetic_fashiongen['validation'], path)
    before = _dataset(path)[0]['inputs']['captions']
    close_hdf5(path)  # this process's reading handle
    with h5py.File(path, 'r+') as f:
        product = f['input_productID'][0, 0]
        rows = np.flatnonzero(f['input_productID'][:, 0] == product)
        column = f['input_description'][:]
        for row in rows:
            column[row, 0] = b'a brand new description'
        del f['input_description']
        f['input_description'] = column
    close_hdf5(path)
    after = _dataset(path)[0]['inputs']['captions']
    assert before != after == 'a brand new description'


def test_caption_encoder_equals_the_tokenizer(synthetic_fashiongen, tmp_path):
    vocab = synthetic_fashiongen['vocab']
    captions = [
        'a pair of long red checked trousers', 'a blue dress',
        'a pair of long red checked trousers', ''
    ]
    encoder = CaptionEncoder(build_tokenizer(vocab), 16)
    ids, mask = encoder(captions)
    expected = encode_captions(build_tokenizer(vocab), captions, 16)
    assert np.array_equal(ids, expected[0])
    assert np.array_equal(mask, expected[1])
    tokenize = Tokenize(vocab, max_length=16, allow_empty=True)
    for row, caption in zip(ids, captions):
        assert np.array_equal(row,
                              tokenize(dict(caption=caption))['input_ids'])
    # Each distinct caption is tokenised once; the cache is not pickled.
    assert len(encoder._cache) == 3
    assert pickle.loads(pickle.dumps(encoder))._cache == {}
    # Another vocabulary is another encoder: no entry is shared.
    other = build_vocab(['trousers dress shirt coat'],
                        str(tmp_path),
                        vocab_size=40)
    other_ids, _ = CaptionEncoder(build_tokenizer(other), 16)(captions)
    assert not np.array_equal(other_ids, ids)


def test_preprocessor_tokenises_packed_captions(nano_config, nano_data):
    preprocessor = MODELS.build(nano_config.model.data_preprocessor)
    captions = [row['caption'] for row in nano_data['rows'][:4]]
    data = dict(
        inputs=dict(
            images=[torch.zeros(3, 64, 64, dtype=torch.uint8)] * 4,
            captions=captions))
    batch = preprocessor(data)['inputs']
    ids, mask = encode_captions(preprocessor.tokenizer, captions, 32)
    assert torch.equal(batch['input_ids'], torch.from_numpy(ids))
    assert torch.equal(batch['attention_mask'], torch.from_numpy(mask))
    assert batch['text_length'] == int(mask.sum(axis=1).max())
