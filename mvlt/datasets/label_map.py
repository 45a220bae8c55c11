"""Category / sub-category names -> contiguous class ids."""
from typing import Dict, Iterable, Optional, Sequence

IGNORE_LABEL = -1


class LabelMap:
    """A fixed, ordered list of class names and the id of each.

    Ids are positions in ``names``; names are sorted when the map is built
    from data, so the same set of names always gives the same ids.

    Args:
        names (Sequence[str]): Class names in id order.
        field (str): What the names are (for messages), e.g. 'category'.
        unknown (str): What :meth:`encode` does with a name not in the map:
            ``'error'`` raises, ``'ignore'`` returns ``IGNORE_LABEL`` (-1, no
            loss, excluded from metrics).
    """

    def __init__(self,
                 names: Sequence[str],
                 field: str = 'category',
                 unknown: str = 'error') -> None:
        if unknown not in ('error', 'ignore'):
            raise ValueError(f"unknown must be 'error' or 'ignore', got "
                             f'{unknown!r}.')
        self.names = tuple(str(n) for n in names)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f'{field} names contain duplicates.')
        self.field = field
        self.unknown = unknown
        self._ids: Dict[str, int] = {n: i for i, n in enumerate(self.names)}

    @classmethod
    def from_values(cls,
                    values: Iterable[str],
                    field: str = 'category',
                    unknown: str = 'error') -> 'LabelMap':
        """Build from the names seen in a (training) split, sorted."""
        return cls(sorted({str(v) for v in values}), field, unknown)

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, name: str, where: Optional[str] = None) -> int:
        """Id of ``name``; ``where`` (file and row) goes into the error."""
        index = self._ids.get(str(name))
        if index is not None:
            return index
        if self.unknown == 'ignore':
            return IGNORE_LABEL
        location = f' ({where})' if where else ''
        raise KeyError(
            f'Unknown {self.field} {name!r}{location}: the label map has '
            f'{len(self.names)} {self.field} names built from the training '
            f'split. Pass the training split\'s map, or set '
            f"unknown_label='ignore' to give such samples label "
            f'{IGNORE_LABEL}.')
