"""tools/misc/extend_vocab.py: old ids kept, new rows added and
initialised, the grown checkpoint loads into a model of the new vocabulary.
"""
import copy
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from mvlt.registry import MODELS
from mvlt.text import build_tokenizer
from mvlt.utils import load_checkpoint_file, register_all_modules
from mvlt.utils.checkpoint import check_state_dict_shapes

register_all_modules()

SHOP_CAPTIONS = [
    'maxi dress in regular fit', 'regular fit maxi skirt',
    'sleeveless maxi dress', 'regular denim jacket', 'maxi coat regular'
] * 3


@pytest.mark.slow
def test_extend_vocab_keeps_old_ids_and_loads(nano_config, tmp_path):
    vocab = nano_config.model.data_preprocessor.tokenizer.vocab_file
    old_tokenizer = build_tokenizer(dict(vocab_file=vocab))
    assert old_tokenizer.unk_token_id in old_tokenizer('maxi')['input_ids']
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(nano_config.model))
    checkpoint = tmp_path / 'pretrained.pth'
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(categories=['X']))), checkpoint)
    captions = tmp_path / 'captions.txt'
    captions.write_text('\n'.join(SHOP_CAPTIONS) + '\n')
    out = tmp_path / 'extended'
    result = subprocess.run([
        sys.executable, 'tools/misc/extend_vocab.py',
        str(checkpoint), vocab,
        str(captions),
        str(out), '--min-frequency', '2'
    ],
                            cwd=REPO,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    old = open(vocab).read().splitlines()
    new = (out / 'vocab.txt').read_text().splitlines()
    assert new[:len(old)] == old and len(new) > len(old)
    assert 'maxi' in new[len(old):] and 'regular' in new[len(old):]
    tokenizer = build_tokenizer(dict(vocab_file=str(out / 'vocab.txt')))
    assert tokenizer(
        'maxi regular', add_special_tokens=False)['input_ids'] == [
            new.index('maxi'), new.index('regular')
        ]

    state = load_checkpoint_file(str(out / 'checkpoint.pth'))
    weights = state['state_dict']
    table = weights['backbone.text_embeddings.word_embeddings.weight']
    old_table = model.state_dict(
    )['backbone.text_embeddings.word_embeddings.weight']
    assert table.shape[0] == len(new)
    assert torch.equal(table[:len(old)], old_table)
    # 'maxi' starts at the mean of the old pieces it was split into.
    pieces = [
        i for i in old_tokenizer('maxi', add_special_tokens=False)['input_ids']
        if i != old_tokenizer.unk_token_id
    ]
    expected = old_table[pieces].mean(0) if pieces else old_table.mean(0)
    assert torch.allclose(table[new.index('maxi')], expected)
    assert state['meta']['dataset_meta'] == dict(categories=['X'])
    assert state['meta']['vocab_extension']['new_size'] == len(new)
    assert 'optimizer' not in state

    grown = copy.deepcopy(nano_config.model)
    grown.data_preprocessor.tokenizer.vocab_file = str(out / 'vocab.txt')
    grown_model = MODELS.build(grown)
    check_state_dict_shapes(grown_model, weights)  # fits now
    grown_model.load_state_dict(weights)
