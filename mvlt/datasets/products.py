"""Per-row product and class columns of any mvlt data set."""
from typing import Dict

import numpy as np
from mmengine.dataset import BaseDataset

from .label_map import IGNORE_LABEL

#: The columns of :func:`product_table`.
PRODUCT_COLUMNS = ('product_index', 'product_id', 'category_label',
                   'subcategory_label')


def product_table(dataset: BaseDataset) -> Dict[str, np.ndarray]:
    """Per-row product and class columns of an mvlt data set.

    Reads only the data list entries (``BaseDataset.get_data_info``, which
    a subclass's own ``get_data_info`` may extend with file reads): no
    image, no caption.

    Args:
        dataset (BaseDataset): A data set whose data infos may hold the
            integer fields ``product_index``, ``product_id``,
            ``category_label`` and ``subcategory_label``.

    Returns:
        dict: ``product_index``, ``product_id``, ``category_label``,
        ``subcategory_label`` (IGNORE_LABEL = -1 where a row has none), each
        an (N,) int64 array in data set order.
    """
    columns = {
        key: np.full(len(dataset), IGNORE_LABEL, np.int64)
        for key in PRODUCT_COLUMNS
    }
    for i in range(len(dataset)):
        info = BaseDataset.get_data_info(dataset, i)
        for key in PRODUCT_COLUMNS:
            if key in info:
                columns[key][i] = int(info[key])
    return columns
