"""Extend a checkpoint's word-piece vocabulary with a corpus's new pieces.

A catalogue's captions need pieces the pre-training vocabulary lacks (a
shop's "maxi" becomes [UNK], "regular" letters); a new vocabulary would not
fit the checkpoint's tables (``CheckpointShapeCheckHook`` refuses it). This
appends the corpus's missing pieces to the old vocabulary (every old id
kept) and adds one row per new piece to every word-piece table of the
checkpoint, as ``transformers``' ``resize_token_embeddings`` does: the old
rows are copied unchanged; a new row is the mean of the old rows of the
pieces the old vocabulary split that piece into (all old rows' mean when
it had only [UNK]), so that a new piece starts where its old spelling was.
"""
import json
import os
import os.path as osp
import tempfile
from collections import Counter
from typing import Dict, Iterable, Iterator, List, Tuple

import torch

from mvlt.text.tokenizer import build_tokenizer, build_vocab
from .checkpoint import (VOCAB_KEYS, load_checkpoint_file, replace_atomically,
                         temporary_path)


def iter_captions(path: str) -> Iterator[str]:
    """Captions of a plain-text file (one a line), a JSON-lines file (a
    ``caption`` field a line) or a shard manifest (``manifest.json`` of
    ``tools/dataset_converters``: every sample's caption).

    Raises:
        ValueError: A JSON line without ``caption`` (names the line).
    """
    if osp.basename(path) == 'manifest.json':
        from mvlt.datasets import ShardDataset
        dataset = ShardDataset(manifest=osp.abspath(path))
        for index in range(len(dataset)):
            yield dataset.get_data_info(index)['caption']
        return
    is_jsonl = path.endswith(('.jsonl', '.json'))
    with open(path, encoding='utf-8') as f:
        for line_no, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            if is_jsonl:
                try:
                    yield json.loads(line)['caption']
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise ValueError(f'{path}:{line_no}: expected a JSON '
                                     f'object with "caption" ({err}).')
            else:
                yield line


def _read_vocab(path: str) -> List[str]:
    with open(path, encoding='utf-8') as f:
        return [line.rstrip('\n') for line in f]


def new_word_pieces(old_vocab: str,
                    captions: List[str],
                    max_new: int = 2000,
                    min_frequency: int = 2) -> List[str]:
    """Pieces of a WordPiece vocabulary trained on ``captions`` that
    ``old_vocab`` lacks, ordered by how often the extended tokenizer uses
    them on ``captions`` (then by name); at most ``max_new``, each used at
    least ``min_frequency`` times."""
    old = _read_vocab(old_vocab)
    with tempfile.TemporaryDirectory() as tmp:
        corpus_vocab = _read_vocab(
            build_vocab(
                captions,
                tmp,
                vocab_size=len(old) + max_new,
                min_frequency=min_frequency))
        known = set(old)
        candidates = [p for p in corpus_vocab if p not in known]
        if not candidates:
            return []
        path = osp.join(tmp, 'extended.txt')
        with open(path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(old + candidates) + '\n')
        tokenizer = build_tokenizer(dict(vocab_file=path))
        first_new = len(old)
        counts: Counter = Counter()
        for ids in tokenizer(captions, add_special_tokens=False)['input_ids']:
            counts.update(i for i in ids if i >= first_new)
    used = sorted((-n, candidates[i - first_new]) for i, n in counts.items()
                  if n >= min_frequency)
    return [piece for _, piece in used[:max_new]]


def _init_rows(table: torch.Tensor, pieces: List[str],
               old_tokenizer) -> torch.Tensor:
    """New rows of ``table`` (V, ...) for ``pieces``: the mean of the rows
    of the old pieces each one splits into (the table's mean if none)."""
    unk = old_tokenizer.unk_token_id
    rows = []
    for piece in pieces:
        text = piece[2:] if piece.startswith('##') else piece
        ids = [
            i
            for i in old_tokenizer(text, add_special_tokens=False)['input_ids']
            if i != unk
        ]
        source = table[ids] if ids else table
        rows.append(source.float().mean(dim=0).to(table.dtype))
    return torch.stack(rows)


def extend_checkpoint_vocab(checkpoint: str,
                            old_vocab: str,
                            captions: Iterable[str],
                            out_dir: str,
                            max_new: int = 2000,
                            min_frequency: int = 2) -> Tuple[str, str, int]:
    """Write ``out_dir/vocab.txt`` (old pieces, then the new ones) and
    ``out_dir/checkpoint.pth`` (weights with the grown tables).

    The output is a weights checkpoint for ``load_from`` (fine-tuning):
    model weights and ``meta`` (with ``dataset_meta``, and
    ``vocab_extension``: old and new size); optimizer and scheduler states
    are dropped, their moments would not fit the grown tables.

    Returns:
        tuple: (vocab path, checkpoint path, number of new pieces).

    Raises:
        ValueError: The checkpoint's tables do not have the old vocabulary's
            size (another vocabulary), or it has no word-piece table.
    """
    captions = list(captions)
    old = _read_vocab(old_vocab)
    pieces = new_word_pieces(old_vocab, captions, max_new, min_frequency)
    state = load_checkpoint_file(checkpoint)
    weights: Dict[str, torch.Tensor] = state.get('state_dict', state)
    tables = [k for k in weights if k.endswith(VOCAB_KEYS)]
    if not tables:
        raise ValueError(f'{checkpoint} has no word-piece table '
                         f'(keys ending in {VOCAB_KEYS}).')
    for key in tables:
        if weights[key].shape[0] != len(old):
            raise ValueError(
                f'{checkpoint}: {key} has {weights[key].shape[0]} rows but '
                f'{old_vocab} lists {len(old)} pieces; give the vocabulary '
                'the checkpoint was trained with.')
    old_tokenizer = build_tokenizer(dict(vocab_file=old_vocab))
    if pieces:
        for key in tables:
            weights[key] = torch.cat([
                weights[key],
                _init_rows(weights[key], pieces, old_tokenizer)
            ])
    out = dict(
        state_dict=weights,
        meta=dict(
            state.get('meta') or {},
            vocab_extension=dict(
                old_size=len(old),
                new_size=len(old) + len(pieces),
                source=osp.abspath(checkpoint))))
    os.makedirs(out_dir, exist_ok=True)
    vocab_path = osp.join(out_dir, 'vocab.txt')
    with open(vocab_path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(old + pieces) + '\n')
    checkpoint_path = osp.join(out_dir, 'checkpoint.pth')
    tmp = temporary_path(checkpoint_path)
    torch.save(out, tmp)
    replace_atomically(tmp, checkpoint_path)
    return vocab_path, checkpoint_path, len(pieces)
