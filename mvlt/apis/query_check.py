"""What a text query holds for the model: word pieces, or nothing.

A query of invisible characters (zero-width spaces, byte-order marks, NUL)
tokenises to no word piece at all, and one of emoji, symbols or a script
the vocabulary lacks to [UNK] only; the model would rank the gallery for
either as confidently as for a description (transformers #3091). The
search refuses the first as empty and answers the second with a warning.
"""
from typing import Optional, Tuple

#: Why a query with no word piece is refused.
NO_WORDS_ERROR = (
    'The query is empty: it holds no visible word (only invisible or '
    'control characters). Describe the product, e.g. "long purple checked '
    'trousers".')
#: The warning of an all-[UNK] query (page and JSON ``warning``).
UNKNOWN_WORDS_WARNING = (
    'None of the words of this query is in the model\'s vocabulary (every '
    'word piece is [UNK]): the ranking below does not reflect the query. '
    'Describe the product in words of the catalogue (colour, pattern, '
    'garment, length).')


def judge_word_pieces(tokenizer,
                      query: str) -> Tuple[Optional[str], Optional[str]]:
    """Tokenise ``query`` as the model does and judge its word pieces.

    Args:
        tokenizer: The model's tokenizer (a transformers tokenizer with an
            ``unk_token_id``; ``MVLTDataPreprocessor.tokenizer``).
        query: The query text (already stripped and length-checked).

    Returns:
        tuple: ``(error, warning)``: :data:`NO_WORDS_ERROR` when the query
        has no word piece (BERT's normaliser drops control and format
        characters such as U+200B, U+FEFF and NUL), else None; and
        :data:`UNKNOWN_WORDS_WARNING` when every word piece is [UNK], else
        None.
    """
    ids = tokenizer(query, add_special_tokens=False)['input_ids']
    if not ids:
        return NO_WORDS_ERROR, None
    if all(i == tokenizer.unk_token_id for i in ids):
        return None, UNKNOWN_WORDS_WARNING
    return None, None
