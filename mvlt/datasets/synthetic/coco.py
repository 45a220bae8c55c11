"""A tiny MS-COCO 2014 retrieval layout for tests: Karpathy's split file,
the official captions files and JPEG images of drawn garments."""
import json
import os
import os.path as osp
from typing import Dict, Optional

import cv2
import numpy as np

from .garments import all_garments, draw_garment, sample_style, sample_view

#: Karpathy split -> image folder of COCO 2014 (restval / val / test images
#: all come from val2014).
FOLDER_OF_SPLIT = dict(
    train='train2014', restval='val2014', val='val2014', test='val2014')
_TEMPLATES = ('{phrase} on a white background', 'a photo of {phrase}',
              'there is {phrase} in the picture', '{phrase} lying flat',
              'a product shot showing {phrase}', 'an image with {phrase}',
              'close view of {phrase}')


def write_synthetic_coco(root: str,
                         num_images: Optional[Dict[str, int]] = None,
                         captions_per_image: int = 5,
                         img_size: int = 64,
                         seed: int = 0) -> dict:
    """Write ``dataset_coco.json``, ``annotations/captions_{train,val}2014.
    json`` and ``train2014/`` / ``val2014/`` JPEGs under ``root``.

    Args:
        root: Output folder (the data set's ``data_root``).
        num_images: Images per Karpathy split; default
            ``dict(train=6, restval=2, val=2, test=4)``.
        captions_per_image: Captions of each image (at most 7); the first
            image of every split gets one more, as some COCO images do.
        img_size: Side of the square images.
        seed: Everything drawn depends only on it.

    Returns:
        dict: ``root``, ``karpathy`` (path), ``captions`` (folder -> path),
        ``images`` (split -> list of dicts with ``cocoid``, ``img_path``,
        ``captions``).
    """
    num_images = num_images or dict(train=6, restval=2, val=2, test=4)
    if not 1 <= captions_per_image < len(_TEMPLATES):
        raise ValueError(f'captions_per_image must be in 1..'
                         f'{len(_TEMPLATES) - 1}, got {captions_per_image}.')
    rng = np.random.default_rng(seed)
    garments = all_garments()
    total = sum(num_images.values())
    picks = rng.choice(
        len(garments), size=total, replace=total > len(garments))
    ids = rng.choice(np.arange(1, 600000), size=total, replace=False)
    karpathy, official = [], {
        f: dict(images=[], annotations=[])
        for f in ('train2014', 'val2014')
    }
    result = dict(root=root, images={})
    sent_id = ann_id = 0
    index = 0
    for split, count in num_images.items():
        folder = FOLDER_OF_SPLIT[split]
        os.makedirs(osp.join(root, folder), exist_ok=True)
        result['images'][split] = []
        for k in range(count):
            garment = garments[int(picks[index])]
            cocoid = int(ids[index])
            filename = f'COCO_{folder}_{cocoid:012d}.jpg'
            img = draw_garment(garment, sample_style(garment, rng),
                               sample_view(rng), img_size)
            path = osp.join(root, folder, filename)
            cv2.imwrite(path, img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
            count_captions = captions_per_image + (k == 0)
            captions = [
                t.format(phrase=garment.phrase)
                for t in _TEMPLATES[:count_captions]
            ]
            sentences = []
            for caption in captions:
                sentences.append(
                    dict(
                        tokens=caption.split(),
                        raw=caption,
                        imgid=index,
                        sentid=sent_id))
                official[folder]['annotations'].append(
                    dict(image_id=cocoid, id=ann_id, caption=caption))
                sent_id += 1
                ann_id += 1
            karpathy.append(
                dict(
                    filepath=folder,
                    sentids=[s['sentid'] for s in sentences],
                    filename=filename,
                    imgid=index,
                    split=split,
                    sentences=sentences,
                    cocoid=cocoid))
            official[folder]['images'].append(
                dict(
                    id=cocoid,
                    file_name=filename,
                    height=img_size,
                    width=img_size))
            result['images'][split].append(
                dict(cocoid=cocoid, img_path=path, captions=captions))
            index += 1
    result['karpathy'] = osp.join(root, 'dataset_coco.json')
    with open(result['karpathy'], 'w', encoding='utf-8') as f:
        json.dump(dict(images=karpathy, dataset='coco'), f)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    result['captions'] = {}
    for folder, content in official.items():
        path = osp.join(root, 'annotations', f'captions_{folder}.json')
        content.update(
            info=dict(description='synthetic COCO captions'), licenses=[])
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(content, f)
        result['captions'][folder] = path
    return result
