"""Caption tokenisation in the data pipeline (runs in the loader workers)."""
from typing import Union

from mmcv.transforms import BaseTransform

from mvlt.registry import TRANSFORMS
from mvlt.text.tokenizer import build_tokenizer, encode_captions


@TRANSFORMS.register_module()
class Tokenize(BaseTransform):
    """``results['caption']`` -> ``input_ids`` / ``attention_mask`` (L,).

    Adds [CLS] ... [SEP], truncates to ``max_length`` and pads with [PAD] to
    exactly ``max_length`` (``docs/method.md`` section 1: L = 128).

    Any text is accepted (other scripts and emoji become word pieces or
    [UNK]; a caption of any length is truncated), except an empty or
    whitespace-only caption, which is an error naming the sample unless
    ``allow_empty`` (with ``on_bad_sample='skip'`` such samples are skipped
    and counted).

    Args:
        tokenizer (str | dict): Vocabulary, see ``build_tokenizer``.
        max_length (int): L.
        allow_empty (bool): Accept empty captions ([CLS] [SEP] only).
    """

    def __init__(self,
                 tokenizer: Union[str, dict],
                 max_length: int = 128,
                 allow_empty: bool = False) -> None:
        self.tokenizer_cfg = tokenizer
        self.max_length = max_length
        self.allow_empty = allow_empty
        self._tokenizer = None

    @property
    def tokenizer(self):
        # Built on first use so that the transform pickles cheaply into
        # dataloader workers.
        if self._tokenizer is None:
            self._tokenizer = build_tokenizer(self.tokenizer_cfg)
        return self._tokenizer

    def transform(self, results: dict) -> dict:
        caption = results['caption']
        if not isinstance(caption, str):
            raise TypeError(
                f'Caption of {results.get("img_path", "a sample")} is '
                f'{type(caption).__name__}, expected str.')
        if not caption.strip() and not self.allow_empty:
            raise ValueError(
                f'Caption of {results.get("img_path", "a sample")} is empty '
                f'({caption!r}); fix the annotation, set '
                "on_bad_sample='skip' to skip such samples, or "
                'Tokenize(allow_empty=True).')
        ids, mask = encode_captions(self.tokenizer, [caption], self.max_length)
        results['input_ids'], results['attention_mask'] = ids[0], mask[0]
        return results

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_tokenizer'] = None
        return state

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(tokenizer={self.tokenizer_cfg!r}, '
                f'max_length={self.max_length}, '
                f'allow_empty={self.allow_empty})')
