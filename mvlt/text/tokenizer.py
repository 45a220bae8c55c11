"""Word-piece tokenizer from a local BERT vocabulary (never downloaded)."""
import functools
import hashlib
import os
import os.path as osp
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import numpy as np
from transformers import BertTokenizerFast

TokenizerConfig = Union[str, dict]

#: Special tokens of a vocabulary made by :func:`build_vocab`, ids 0-4.
SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')


def _vocab_lines(vocab_file: str) -> int:
    with open(vocab_file, encoding='utf-8') as f:
        return sum(1 for line in f if line.rstrip('\n'))


@functools.lru_cache(maxsize=8)
def _load(vocab: str, do_lower_case: bool,
          strip_accents: Union[bool, None]) -> BertTokenizerFast:
    if osp.isdir(vocab):
        tokenizer = BertTokenizerFast.from_pretrained(
            vocab,
            local_files_only=True,
            do_lower_case=do_lower_case,
            strip_accents=strip_accents)
        vocab_file = osp.join(vocab, 'vocab.txt')
    else:
        # transformers 5 takes the vocabulary as `vocab=`; its old
        # `vocab_file=` keyword is silently ignored and leaves only the five
        # special tokens, hence the size check below.
        tokenizer = BertTokenizerFast(
            vocab=vocab,
            do_lower_case=do_lower_case,
            strip_accents=strip_accents)
        vocab_file = vocab
    if osp.isfile(vocab_file) and len(tokenizer) < _vocab_lines(vocab_file):
        raise RuntimeError(
            f'Tokenizer built from {vocab} has {len(tokenizer)} entries but '
            f'{vocab_file} lists {_vocab_lines(vocab_file)}; the installed '
            'transformers did not read the vocabulary.')
    return tokenizer


def build_tokenizer(cfg: TokenizerConfig) -> BertTokenizerFast:
    """Build (and cache) a ``BertTokenizerFast`` from a local vocabulary.

    Args:
        cfg (str | dict): A path to a ``vocab.txt`` file or to a directory
            holding ``vocab.txt`` (or ``tokenizer.json``), or a dict with
            ``vocab_file`` and optionally ``do_lower_case`` (default True) and
            ``strip_accents`` (default None: follow ``do_lower_case``).

    Returns:
        BertTokenizerFast: The tokenizer; ``len(tokenizer)`` is the
        vocabulary size the model's embedding must have.

    Raises:
        FileNotFoundError: When the vocabulary is missing; the message says
            how to get one (nothing is downloaded).
    """
    if isinstance(cfg, str):
        cfg = dict(vocab_file=cfg)
    cfg = dict(cfg)
    cfg.pop('type', None)
    vocab = cfg.pop('vocab_file', None)
    do_lower_case = bool(cfg.pop('do_lower_case', True))
    strip_accents = cfg.pop('strip_accents', None)
    if cfg:
        raise KeyError(f'tokenizer config: unknown keys {sorted(cfg)}; '
                       'allowed: vocab_file, do_lower_case, strip_accents.')
    if not vocab:
        raise ValueError(
            'tokenizer config needs vocab_file: a BERT vocab.txt or a folder '
            'holding one (for example bert-base-uncased/vocab.txt, or one '
            'made by tools/misc/build_vocab.py).')
    vocab = osp.expanduser(str(vocab))
    if not osp.exists(vocab):
        raise FileNotFoundError(
            f'Vocabulary {vocab!r} does not exist. Nothing is downloaded: '
            'pass tokenizer.vocab_file pointing to a local vocab.txt (for '
            'example the bert-base-uncased one) or build one from your '
            'captions with '
            '`python tools/misc/build_vocab.py CAPTIONS OUT_DIR`.')
    if osp.isdir(vocab) and not any(
            osp.exists(osp.join(vocab, name))
            for name in ('vocab.txt', 'tokenizer.json')):
        raise FileNotFoundError(
            f'Vocabulary folder {vocab!r} holds neither vocab.txt nor '
            f'tokenizer.json (found: {sorted(os.listdir(vocab))[:10]}).')
    return _load(vocab, do_lower_case, strip_accents)


def encode_captions(tokenizer: BertTokenizerFast, captions: Sequence[str],
                    max_length: int) -> Tuple[np.ndarray, np.ndarray]:
    """Word-piece ids of captions: [CLS] ... [SEP], truncated and padded with
    [PAD] to exactly ``max_length`` (docs/method.md section 1: L = 128).

    Args:
        tokenizer (BertTokenizerFast): From :func:`build_tokenizer`.
        captions (Sequence[str]): The texts (any script; unknown pieces
            become [UNK]).
        max_length (int): L.

    Returns:
        tuple: ``input_ids`` and ``attention_mask``, int64 (N, L).
    """
    encoded = tokenizer(
        list(captions),
        max_length=max_length,
        padding='max_length',
        truncation=True)
    return (np.asarray(encoded['input_ids'], np.int64).reshape(-1, max_length),
            np.asarray(encoded['attention_mask'],
                       np.int64).reshape(-1, max_length))


def caption_key(caption: str, tokenizer) -> str:
    """The caption as the tokenizer sees it: normalised, split into words.

    The key is the tokenizer backend's normaliser output (for uncased BERT:
    control characters removed, whitespace unified, CJK characters spaced,
    lower case, accents stripped) split by its pre-tokenizer (whitespace and
    punctuation) and joined by single spaces. Two captions with equal keys
    give the same word pieces, hence the same token ids: the model cannot
    tell them apart. Token ids themselves are not the key because they
    merge more than the text does: distinct out-of-vocabulary words all
    become ``[UNK]``, and captions that differ only past ``max_length`` are
    truncated alike.

    Args:
        caption (str): The caption.
        tokenizer: A ``transformers`` fast tokenizer (e.g. from
            :func:`build_tokenizer`).

    Raises:
        TypeError: The tokenizer has no ``backend_tokenizer`` (not a fast
            tokenizer).
    """
    backend = getattr(tokenizer, 'backend_tokenizer', None)
    if backend is None:
        raise TypeError(
            f'caption_key needs a transformers fast tokenizer (with '
            f'backend_tokenizer), got {type(tokenizer).__name__}; build one '
            'with mvlt.text.build_tokenizer.')
    text = caption
    if backend.normalizer is not None:
        text = backend.normalizer.normalize_str(text)
    if backend.pre_tokenizer is None:
        return ' '.join(text.split())
    return ' '.join(
        word for word, _ in backend.pre_tokenizer.pre_tokenize_str(text))


def caption_keys(captions: Sequence[str], tokenizer) -> List[str]:
    """:func:`caption_key` of each caption (each distinct one computed
    once)."""
    cache: Dict[str, str] = {}
    for caption in captions:
        if caption not in cache:
            cache[caption] = caption_key(caption, tokenizer)
    return [cache[caption] for caption in captions]


def caption_key_id(key: str) -> int:
    """A :func:`caption_key` as a signed 64-bit integer (BLAKE2b, 8 bytes):
    the same on every process and run, so keys compare across DDP ranks as
    tensors. Two distinct keys collide with probability 2**-64."""
    digest = hashlib.blake2b(key.encode('utf-8'), digest_size=8).digest()
    return int.from_bytes(digest, 'little', signed=True)


class CaptionEncoder:
    """:func:`encode_captions` with a cache: each distinct caption is
    tokenised once per encoder.

    Fashion-Gen repeats a product's description for each of its 1-6 photos
    and every epoch shows every photo again, so a training run tokenises
    each description once instead of once per sample and epoch. The cache
    is keyed by the caption text and belongs to this encoder's tokenizer
    and length, so another vocabulary or length never sees its entries.

    Args:
        tokenizer (BertTokenizerFast): From :func:`build_tokenizer`.
        max_length (int): L.
        max_entries (int): Cache size bound (entries are ~L * 2 bytes; the
            cache is cleared when full).
    """

    def __init__(self,
                 tokenizer: BertTokenizerFast,
                 max_length: int,
                 max_entries: int = 1_000_000) -> None:
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.max_entries = max_entries
        self._cache: Dict[str, np.ndarray] = {}
        self._key_ids: Dict[str, int] = {}
        # ids < 2**16 fit uint16 (BERT: 30,522); wider vocabularies int32.
        self._dtype = np.uint16 if len(tokenizer) <= 2**16 else np.int32

    def __call__(self,
                 captions: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """``input_ids`` and ``attention_mask``, int64 (N, L)."""
        missing: List[str] = list(
            dict.fromkeys(c for c in captions if c not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > self.max_entries:
                self._cache.clear()
            ids, mask = encode_captions(self.tokenizer, missing,
                                        self.max_length)
            lengths = mask.sum(axis=1)
            for caption, row, length in zip(missing, ids, lengths):
                self._cache[caption] = row[:length].astype(self._dtype)
        ids = np.full((len(captions), self.max_length),
                      self.tokenizer.pad_token_id, np.int64)
        mask = np.zeros((len(captions), self.max_length), np.int64)
        for index, caption in enumerate(captions):
            row = self._cache[caption]
            ids[index, :len(row)] = row
            mask[index, :len(row)] = 1
        return ids, mask

    def key_ids(self, captions: Sequence[str]) -> np.ndarray:
        """(N,) int64 :func:`caption_key_id` of each caption's
        :func:`caption_key`: equal exactly for identical captions."""
        for caption in captions:
            if caption not in self._key_ids:
                if len(self._key_ids) >= self.max_entries:
                    self._key_ids.clear()
                self._key_ids[caption] = caption_key_id(
                    caption_key(caption, self.tokenizer))
        return np.array([self._key_ids[c] for c in captions], np.int64)

    def __getstate__(self) -> dict:
        # Pickled into other processes without its caches.
        state = self.__dict__.copy()
        state['_cache'] = {}
        state['_key_ids'] = {}
        return state


def write_vocab_file(entries: Sequence[str], out_dir: str) -> str:
    """Write a BERT-layout ``vocab.txt`` (one entry a line, id = line
    number) into ``out_dir``; the one writer of vocabularies
    (:func:`build_vocab`, the synthetic data sets, the benchmark).

    Args:
        entries (Sequence[str]): The entries in id order.
        out_dir (str): Folder that receives ``vocab.txt`` (made if needed).

    Returns:
        str: Path of the written file.
    """
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, 'vocab.txt')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(entries) + '\n')
    return path


def build_vocab(captions: Iterable[str],
                out_dir: str,
                vocab_size: int = 8000,
                min_frequency: int = 1,
                lowercase: bool = True) -> str:
    """Train a BERT-layout WordPiece vocabulary with ``tokenizers``.

    Args:
        captions (Iterable[str]): The corpus.
        out_dir (str): Folder that receives ``vocab.txt``.
        vocab_size (int): Upper bound on entries (fewer on a small corpus).
        min_frequency (int): Minimum count of a merged piece.
        lowercase (bool): Lower-case the text (uncased BERT).

    Returns:
        str: Path of the written ``vocab.txt`` ([PAD] [UNK] [CLS] [SEP]
        [MASK] first, then the learned pieces in sorted order).
    """
    from tokenizers import BertWordPieceTokenizer
    tokenizer = BertWordPieceTokenizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=None,
        lowercase=lowercase)
    tokenizer.train_from_iterator(
        captions,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        wordpieces_prefix='##')
    # The trainer breaks frequency ties differently from run to run, which
    # would shuffle ids between identical runs: write the special tokens
    # first and the learned pieces sorted, so ids depend only on the set.
    learned = sorted(set(tokenizer.get_vocab()) - set(SPECIAL_TOKENS))
    return write_vocab_file(list(SPECIAL_TOKENS) + learned, out_dir)
