"""Bad inputs end with a clear message or a counted skip, never deep inside
a library."""
import copy
import json
import os
import shutil

import h5py
import pytest
import torch
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from conftest import write_jsonl_dataset
from mvlt.datasets import FashionGenDataset, ImageTextDataset
from mvlt.datasets.transforms import Tokenize
from mvlt.engine import MVLTRunner
from mvlt.registry import MODELS
from mvlt.text import build_tokenizer
from mvlt.utils import register_all_modules

register_all_modules()


def _pipeline(vocab: str, max_length: int = 32) -> list:
    return [
        dict(type='LoadImage'),
        dict(type='Resize', scale=(64, 64), keep_ratio=False),
        dict(type='Tokenize', tokenizer=vocab, max_length=max_length),
        dict(type='PackMVLTInputs'),
    ]


@pytest.fixture
def own_data(tmp_path):
    """A nano data set this test may damage."""
    return write_jsonl_dataset(str(tmp_path / 'data'))


def _dataset(data: dict, policy: str = 'raise', ann_file='train.jsonl'):
    return ImageTextDataset(
        ann_file=ann_file,
        data_root=data['root'],
        data_prefix=dict(img_path='images/'),
        pipeline=_pipeline(data['vocab']),
        on_bad_sample=policy)


def _rewrite_rows(data: dict, change) -> None:
    path = os.path.join(data['root'], 'train.jsonl')
    rows = [json.loads(line) for line in open(path)]
    change(rows)
    with open(path, 'w', encoding='utf-8') as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + '\n')


# ------------------------------------------------------------ HDF5 files
def test_truncated_hdf5_file(synthetic_fashiongen, tmp_path):
    path = str(tmp_path / 'truncated.h5')
    data = open(synthetic_fashiongen['train'], 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(
            OSError, match=f'Cannot open {path} as an HDF5 file:.*'
            'truncated'):
        FashionGenDataset(ann_file=path)


def test_hdf5_file_without_input_image(synthetic_fashiongen, tmp_path):
    path = str(tmp_path / 'no_images.h5')
    shutil.copyfile(synthetic_fashiongen['train'], path)
    with h5py.File(path, 'a') as f:
        del f['input_image']
    with pytest.raises(
            KeyError,
            match=r"no_images.h5 lacks the HDF5 data set\(s\) "
            r"\['input_image'\]"):
        FashionGenDataset(ann_file=path)


# ----------------------------------------------------------------- images
def test_garbage_image_bytes_raise_with_sample_and_file(own_data):
    name = own_data['rows'][5]['img_path']
    with open(os.path.join(own_data['root'], 'images', name), 'wb') as f:
        f.write(os.urandom(300))
    dataset = _dataset(own_data)
    with pytest.raises(ValueError) as info:
        dataset[5]
    message = str(info.value)
    assert message.startswith(f'sample 5 ({own_data["root"]}/images/{name})'
                              f': Cannot decode image ')
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_garbage_images_are_skipped_and_counted_across_workers(own_data):
    for index in (2, 9):
        name = own_data['rows'][index]['img_path']
        with open(os.path.join(own_data['root'], 'images', name), 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n garbage')
    dataset = _dataset(own_data, 'skip')
    loader = DataLoader(
        dataset, batch_size=4, num_workers=2, collate_fn=pseudo_collate)
    batches = list(loader)
    assert sum(len(b['data_samples']) for b in batches) == len(dataset)
    # The counter is shared with the worker processes.
    assert dataset.num_bad_samples == 2
    # A deep copy has its own counter.
    assert copy.deepcopy(dataset).num_bad_samples == 2


@pytest.mark.slow
def test_training_over_corrupt_items_finishes_and_reports(
        own_data, nano_config, tmp_path):
    for index in (2, 9):
        name = own_data['rows'][index]['img_path']
        with open(os.path.join(own_data['root'], 'images', name), 'wb') as f:
            f.write(b'garbage')
    cfg = copy.deepcopy(nano_config)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_dataloader.dataset.data_root = own_data['root']
    cfg.train_dataloader.dataset.on_bad_sample = 'skip'
    cfg.train_dataloader.num_workers = 2
    runner = MVLTRunner.from_cfg(cfg)
    runner.train()  # 2 epochs
    assert runner.message_hub.get_info('skipped_samples') == 4
    log = open(runner.logger.handlers[-1].baseFilename).read()
    assert 'skipped_samples: 4' in log
    assert '4 bad samples were skipped during training so far' in log
    assert f"Skipped bad sample 2 ({own_data['root']}/images/" \
           f"{own_data['rows'][2]['img_path']}): ImageDecodeError: " \
           'Cannot decode' in log


# --------------------------------------------------------------- captions
@pytest.mark.parametrize('caption', ['', '   \t\n '])
def test_empty_caption_is_a_clear_error_or_a_counted_skip(own_data, caption):
    _rewrite_rows(own_data,
                  lambda rows: rows[4].__setitem__('caption', caption))
    with pytest.raises(
            ValueError, match=r'sample 4 \(.*\): Caption of .* is empty'):
        _dataset(own_data)[4]
    dataset = _dataset(own_data, 'skip')
    replaced = dataset[4]
    assert replaced['data_samples'].sample_idx == 5
    assert dataset.num_bad_samples == 1
    tokens = Tokenize(
        own_data['vocab'], 8,
        allow_empty=True).transform(dict(caption=caption))
    assert tokens['attention_mask'].sum() == 2  # [CLS] [SEP]


def test_long_and_non_latin_captions_tokenize(own_data):
    vocab_size = len(build_tokenizer(own_data['vocab']))
    long_caption = ('a red circle on a white background ' * 600)[:20000]
    captions = [
        long_caption, '红色的圆形 на белом фоне 👗✨ a red circle', '🙂🙂🙂',
        'ｆｕｌｌ－ｗｉｄｔｈ ﾃｷｽﾄ', 'مربع أحمر'
    ]
    _rewrite_rows(
        own_data, lambda rows:
        [rows[i].__setitem__('caption', c) for i, c in enumerate(captions)])
    dataset = _dataset(own_data)
    tokenizer = build_tokenizer(own_data['vocab'])
    for index in range(len(captions)):
        ids = dataset[index]['inputs']['input_ids']
        assert ids.shape == (32, ) and int(ids.max()) < vocab_size
        assert int(ids[0]) == tokenizer.cls_token_id
    long_ids = dataset[0]['inputs']['input_ids']
    assert int(long_ids[-1]) == tokenizer.sep_token_id  # truncated, not cut
    assert tokenizer.unk_token_id in dataset[2]['inputs']['input_ids']


@pytest.mark.parametrize('encoding', ['latin-1', 'utf-16'])
def test_caption_file_in_the_wrong_encoding(own_data, encoding):
    path = os.path.join(own_data['root'], 'latin.jsonl')
    rows = [
        dict(img_path=r['img_path'], caption=r['caption'] + ' café')
        for r in own_data['rows']
    ]
    with open(path, 'w', encoding=encoding) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + '\n')
    # Line 1 already holds a non-UTF-8 byte (é, or UTF-16's byte-order mark).
    with pytest.raises(
            ValueError,
            match='latin.jsonl:1: not UTF-8 text .*save the file '
            'as UTF-8'):
        _dataset(own_data, ann_file='latin.jsonl')


def test_utf8_byte_order_mark_is_accepted(own_data):
    path = os.path.join(own_data['root'], 'bom.jsonl')
    with open(path, 'w', encoding='utf-8-sig') as f:
        for row in own_data['rows']:
            f.write(json.dumps(row) + '\n')
    assert len(_dataset(own_data,
                        ann_file='bom.jsonl')) == len(own_data['rows'])


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize(
    'key, value, error, message',
    [
        ('backbone.drop_path_rat', 0.1, TypeError,
         r"unexpected keyword argument 'drop_path_rat'\. "
         r'Did you mean drop_path_rate\?'),
        ('backbone.type', 'PVTVl', KeyError,
         r'PVTVl is not in the mvlt::model registry\. Did you mean PVTVL\?'),
        ('heads.mir.decoder.chanels',
         (8, 8, 8), TypeError, r'Did you mean channels / in_channels\?'),
        # A keyword of the base class that GridMask passes **kwargs to.
        ('data_preprocessor.mask_generator',
         dict(type='GridMask', mask_ration=0.3), TypeError,
         r"'mask_ration'\. Did you mean mask_ratio\?"),
    ])
def test_misspelt_config_key_and_type_get_suggestions(nano_config, key, value,
                                                      error, message):
    cfg = copy.deepcopy(nano_config)
    cfg.merge_from_dict({f'model.{key}': value})
    with pytest.raises(error, match=message):
        MODELS.build(cfg.model)


# ------------------------------------------------------------ checkpoints
def test_checkpoint_with_another_vocabulary(nano_config, own_data, tmp_path):
    from mvlt.text import build_vocab
    other_vocab = build_vocab(
        [f'word{i} token{i} piece{i}' for i in range(300)],
        str(tmp_path / 'other_vocab'),
        vocab_size=400)
    other = copy.deepcopy(nano_config.model)
    other.data_preprocessor.tokenizer.vocab_file = other_vocab
    other_model = MODELS.build(other)
    other_size = other_model.backbone.vocab_size
    checkpoint = str(tmp_path / 'other_vocab.pth')
    torch.save(dict(state_dict=other_model.state_dict()), checkpoint)

    cfg = copy.deepcopy(nano_config)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = checkpoint
    runner = MVLTRunner.from_cfg(cfg)
    own_size = runner.model.backbone.vocab_size
    assert own_size != other_size
    with pytest.raises(
            ValueError,
            match=f'{checkpoint} was trained with a vocabulary of '
            f'{other_size} word pieces but the model has '
            f'{own_size}'):
        runner.test()


# ----------------------------------------------------------------- images
def test_wrong_image_size_without_position_interpolation(nano_config):
    backbone = copy.deepcopy(nano_config.model.backbone)
    # Built alone, the backbone needs its sizes (MVLT takes them from the
    # data preprocessor).
    backbone.update(
        vocab_size=50, interpolate_pos_embed=False, img_size=64, text_len=32)
    model = MODELS.build(backbone)
    with pytest.raises(
            ValueError,
            match=r'gives a 24x24 patch grid but the position '
            r'embeddings were made for \(16, 16\).*Resize images '
            r'to \(64, 64\) or set interpolate_pos_embed=True'):
        model(torch.zeros(1, 3, 96, 96), torch.ones(1, 8, dtype=torch.long))
