"""Mask generators: shape, device, ratio, grid alignment, reproducibility."""
import pytest
import torch

from mvlt.models.mask_generators import BaseMaskGenerator
from mvlt.registry import MASK_GENERATORS

ALL_TYPES = ['random-grid', 'grid', 'stroke', 'center']


def _draw(gen, seed=0, batch=4, size=256):
    generator = torch.Generator().manual_seed(seed)
    return gen(batch, size, size, generator=generator)


@pytest.mark.parametrize('type_name', ALL_TYPES)
def test_shape_dtype_device_and_seed(type_name):
    gen = MASK_GENERATORS.build(dict(type=type_name))
    mask = _draw(gen)
    assert mask.shape == (4, 256, 256)
    assert mask.dtype == torch.bool
    assert mask.device.type == 'cpu'
    assert torch.equal(mask, _draw(gen, seed=0))
    assert mask.any() and not mask.all()


@pytest.mark.parametrize('type_name', ['random-grid', 'stroke'])
def test_different_seeds_differ(type_name):
    gen = MASK_GENERATORS.build(dict(type=type_name))
    assert not torch.equal(_draw(gen, seed=0), _draw(gen, seed=1))


@pytest.mark.parametrize('unit_scale', [1, 2, 4, 8, 16])
@pytest.mark.parametrize('ratio', [0.1, 0.3, 0.5, 0.7, 0.9])
def test_random_grid_exact_ratio_and_alignment(unit_scale, ratio):
    gen = MASK_GENERATORS.build(
        dict(type='RandomGridMask', mask_ratio=ratio, unit_scale=unit_scale))
    assert gen.unit_size == 4 * unit_scale
    mask = _draw(gen, batch=3)
    units_per_side = 256 // gen.unit_size
    units = mask.view(3, units_per_side, gen.unit_size, units_per_side,
                      gen.unit_size)
    # Every unit is wholly masked or wholly kept: aligned to the unit grid.
    per_unit = units.float().mean(dim=(2, 4))
    assert torch.all((per_unit == 0) | (per_unit == 1))
    expected = round(ratio * units_per_side**2)
    assert (per_unit.sum(dim=(1, 2)) == expected).all()


def test_paper_default_is_16px_units_half_masked():
    gen = MASK_GENERATORS.build(dict(type='RandomGridMask'))
    assert gen.unit_size == 16 and gen.mask_ratio == 0.5
    assert gen.fill_value == 1e-6
    assert gen.grid_shape(256, 256) == (16, 16)
    images = torch.randn(2, 3, 256, 256)
    mask = _draw(gen, batch=2)
    filled = gen.apply(images, mask)
    assert torch.all(filled[mask.unsqueeze(1).expand_as(filled)] == 1e-6)
    assert torch.equal(filled[~mask.unsqueeze(1).expand_as(filled)],
                       images[~mask.unsqueeze(1).expand_as(images)])


@pytest.mark.parametrize('type_name', ['grid', 'center'])
def test_lattice_and_center_are_grid_aligned(type_name):
    gen = MASK_GENERATORS.build(dict(type=type_name))
    mask = _draw(gen)
    units = mask.view(4, 16, 16, 16, 16).float().mean(dim=(2, 4))
    assert torch.all((units == 0) | (units == 1))


def test_grid_is_checkerboard_by_default():
    gen = MASK_GENERATORS.build(dict(type='GridMask', random_offset=False))
    units = _draw(gen)[0, ::16, ::16]
    rows, cols = torch.meshgrid(
        torch.arange(16), torch.arange(16), indexing='ij')
    assert torch.equal(units, (rows + cols) % 2 == 0)
    assert units.float().mean() == 0.5


def test_center_block_is_central():
    gen = MASK_GENERATORS.build(dict(type='CenterMask', mask_ratio=0.25))
    mask = _draw(gen)[0]
    rows = mask.any(dim=1).nonzero().flatten()
    cols = mask.any(dim=0).nonzero().flatten()
    assert rows.min() == 256 - 1 - rows.max()
    assert cols.min() == 256 - 1 - cols.max()
    assert abs(mask.float().mean().item() - 0.25) < 0.02


def test_stroke_ratio_close_to_target():
    gen = MASK_GENERATORS.build(dict(type='StrokeMask', mask_ratio=0.3))
    coverage = _draw(gen, batch=16).float().mean(dim=(1, 2))
    assert (coverage >= 0.3).all() and (coverage < 0.5).all()


def test_non_multiple_image_size_is_cropped():
    gen = MASK_GENERATORS.build(dict(type='RandomGridMask'))
    mask = gen(2, 100, 70, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (2, 100, 70)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('type_name', ALL_TYPES)
def test_masks_are_built_on_the_generator_device(type_name):
    gen = MASK_GENERATORS.build(dict(type=type_name))
    cuda_gen = torch.Generator(device='cuda').manual_seed(0)
    assert gen(2, 64, 64, generator=cuda_gen).device.type == 'cuda'


def test_device_argument_without_generator():
    gen = MASK_GENERATORS.build(dict(type='random-grid'))
    assert gen(1, 64, 64, device='cpu').device.type == 'cpu'


def test_invalid_settings_fail_early():
    with pytest.raises(ValueError, match='mask_ratio'):
        MASK_GENERATORS.build(dict(type='RandomGridMask', mask_ratio=1.5))
    with pytest.raises(ValueError, match='positive'):
        MASK_GENERATORS.build(dict(type='GridMask', period=0))
    with pytest.raises(NotImplementedError):
        BaseMaskGenerator()(1, 16, 16)
