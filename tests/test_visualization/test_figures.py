"""Retrieval and MIG figures: layout of the tiles, frames and titles."""
import numpy as np

from mvlt.visualization import (masked_view, reconstruction_figure,
                                retrieval_figure)

GREEN = np.array([40, 170, 60])
RED = np.array([210, 50, 50])


def _image(value: int, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_retrieval_figure_frames_positives_green_and_negatives_red():
    size = 64
    figure = retrieval_figure(
        'a red dress', [_image(10), _image(200)], [True, False], [0.9, 0.1],
        size=size)
    assert figure.dtype == np.uint8 and figure.ndim == 3
    # query + two candidates, each framed by max(3, size // 40) pixels.
    tile_w = size + 2 * 3
    assert figure.shape[1] == 3 * tile_w
    assert (figure[1, tile_w + 1] == GREEN).all()
    assert (figure[1, 2 * tile_w + 1] == RED).all()
    # The positive outside the top-k comes after a gap, framed green.
    wider = retrieval_figure(
        _image(50), ['a', 'b'], [False, False], [0.5, 0.4],
        extra_positive='c',
        extra_rank=7,
        size=size)
    assert wider.shape[1] == 4 * tile_w + max(8, size // 8)
    assert (wider[1, -2] == GREEN).all()


def test_titles_add_a_header_row():
    triplet = [_image(0), _image(128), _image(255)]
    plain = reconstruction_figure(*triplet, size=48)
    titled = reconstruction_figure(*triplet, size=48, title='sample 3')
    assert titled.shape[0] == plain.shape[0] + 24
    assert titled.shape[1] == plain.shape[1] == 3 * (48 + 6)
    np.testing.assert_array_equal(titled[24:], plain)
    # The header holds dark text on white.
    assert titled[:24].min() < 100 and titled[0, 0].tolist() == [255] * 3
    ranked = retrieval_figure('q', ['x'], [True], [1.0], title='TIR #1')
    assert ranked.shape[0] == retrieval_figure('q', ['x'], [True],
                                               [1.0]).shape[0] + 24


def test_masked_view_greys_only_masked_pixels():
    original = _image(7, 4)
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    view = masked_view(original, mask)
    assert (view[:2] == 128).all() and (view[2:] == 7).all()
