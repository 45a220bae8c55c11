"""Caption preprocessing: the word-piece tokenizer and vocabularies.

A room of its own beside :mod:`mvlt.image`, not among the model's parts
(:mod:`mvlt.models`): the torch-free serving path (:mod:`mvlt.deploy`,
ONNX Runtime) tokenises queries with it where torch is not installed, and
importing :mod:`mvlt.models` imports torch. Names are imported on first use
(PEP 562).
"""
from mvlt.utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        'tokenizer': ('CaptionEncoder', 'SPECIAL_TOKENS', 'build_tokenizer',
                      'build_vocab', 'encode_captions', 'write_vocab_file'),
    }, globals())
