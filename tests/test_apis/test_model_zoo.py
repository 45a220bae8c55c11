"""list_models / get_model over configs/mvlt/metafile.yml (as mmpretrain's),
and the inferencer built from a model name."""
import os.path as osp

import pytest
import torch
import yaml

from conftest import REPO
from mvlt.apis import MVLTInferencer, get_model, list_models
from mvlt.apis.model_zoo import model_config
from mvlt.models import MVLT


def _placeholder_vocab(path, size: int = 30522) -> str:
    tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    tokens += [f'[unused{i}]' for i in range(size - len(tokens))]
    path.write_text('\n'.join(tokens) + '\n')
    return str(path)


@pytest.fixture(scope='module')
def bert_vocab(tmp_path_factory):
    """A vocabulary of BERT's size (the Fashion-Gen configs' 30,522)."""
    return _placeholder_vocab(tmp_path_factory.mktemp('zoo') / 'vocab.txt')


def test_list_models_reads_the_metafile():
    with open(f'{REPO}/configs/mvlt/metafile.yml') as f:
        listed = {m['Name'] for m in yaml.safe_load(f)['Models']}
    assert set(list_models()) == listed
    assert list_models('mask-ratio') == sorted(n for n in listed
                                               if 'mask-ratio' in n)
    assert list_models('*_fashiongen_itm*') == sorted(
        n for n in listed if '_fashiongen_itm' in n)
    assert 'pretrain_fashiongen' not in list_models(
        exclude_patterns=['*150e_fashiongen'])


def test_names_are_config_names_and_former_names_still_work():
    """Name = the config file's name (mmpretrain's convention); the names
    models had before (``Alias``) still select them."""
    with open(f'{REPO}/configs/mvlt/metafile.yml') as f:
        entries = yaml.safe_load(f)['Models']
    for entry in entries:
        assert entry['Name'] == osp.splitext(osp.basename(
            entry['Config']))[0]
    assert model_config('mvlt_pvt-tiny_8xb150-150e_fashiongen') == \
        model_config('pretrain_fashiongen') == \
        osp.join(REPO, 'configs', 'mvlt', 'pretrain_fashiongen.py')
    assert list_models('8xb150-150e_fashiongen_mask-ratio') == list_models(
        'pretrain_fashiongen_mask-ratio')
    assert len(list_models('pretrain_fashiongen_mask-ratio')) == 4


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        get_model('mvlt_pvt-huge')
    for name in list_models():
        assert name in str(err.value)
    with pytest.raises(ValueError, match='Did you mean'):
        get_model('mask-ratio-0.3')
    with pytest.raises(ValueError, match='no released weights'):
        get_model(
            list_models()[0],
            pretrained=True,
            data_preprocessor=dict(tokenizer=dict(vocab_file='unused')))


@pytest.mark.slow
@pytest.mark.parametrize('name', list_models())
def test_get_model_builds_every_listed_model(name, bert_vocab):
    model = get_model(
        name, data_preprocessor=dict(tokenizer=dict(vocab_file=bert_vocab)))
    assert isinstance(model, MVLT) and not model.training
    assert model.heads
    assert model.cfg.model.data_preprocessor.tokenizer.vocab_file == \
        bert_vocab


@pytest.mark.slow
def test_pretrained_weights_and_inferencer_by_name(bert_vocab, tmp_path):
    name = 'pretrain_fashiongen'
    options = dict(
        data_preprocessor=dict(tokenizer=dict(vocab_file=bert_vocab)))
    torch.manual_seed(3)
    model = get_model(name, **options)
    checkpoint = str(tmp_path / 'weights.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    torch.manual_seed(4)
    loaded = get_model(name, pretrained=checkpoint, **options)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    with pytest.raises(FileNotFoundError, match='nothing is downloaded'):
        get_model(name, pretrained=str(tmp_path / 'missing.pth'), **options)
    inferencer = MVLTInferencer(
        name,
        checkpoint,
        cfg_options={
            'model.data_preprocessor.tokenizer.vocab_file': bert_vocab
        })
    assert inferencer.cfg.model.backbone.arch == model.cfg.model.backbone.arch
    for key, value in model.state_dict().items():
        assert torch.equal(value, inferencer.model.state_dict()[key]), key
