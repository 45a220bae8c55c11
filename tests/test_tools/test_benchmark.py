"""The speed benchmark's helpers and tool on tiny settings (behaviour only)."""
import copy
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from conftest import NANO_CONFIG, REPO, nano_cfg_options
from mvlt.utils import build_tokenizer
from mvlt.utils.benchmark import (PeakMemory, baseline_config, count_flops,
                                  growth_exponent, interleaved_timings,
                                  summarize, synthetic_samples,
                                  write_throwaway_vocab)

BENCH = osp.join(REPO, 'configs', 'mvlt', 'benchmark')
# A nano model at 32 px with captions of 16 tokens: seconds per step.
TINY_RUN = [
    NANO_CONFIG, '--img-size', '32', '--text-len', '16', '--batch-size', '4',
    '--iters', '2', '--warmup', '1', '--no-malloc-tuning'
]


def load_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')
    spec = importlib.util.spec_from_file_location('benchmark_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_count_flops_matmul_and_cpu_attention():
    x, w = torch.randn(8, 16), torch.randn(32, 16)
    flops, out = count_flops(lambda: F.linear(x, w))
    assert flops == 2 * 8 * 16 * 32 and out.shape == (8, 32)
    from mvlt.models.layers import fused_linear
    layer = torch.nn.Linear(16, 32)
    with torch.no_grad():
        flops, out = count_flops(lambda: fused_linear(x[None], layer, 'gelu'))
    assert flops == 2 * 8 * 16 * 32 and out.shape == (1, 8, 32)
    q = torch.randn(2, 1, 10, 8)
    k = v = torch.randn(2, 1, 6, 8)
    flops, _ = count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    # Q K^T and A V: 2 * (2 * 10 * 6 * 8) multiply-adds each.
    assert flops == 2 * 2 * (2 * 10 * 6 * 8)


def test_small_helpers(tmp_path):
    assert growth_exponent([1, 2, 4], [3, 6, 12]) == pytest.approx(1.0)
    assert growth_exponent([1, 4], [1, 16]) == pytest.approx(2.0)
    stats = summarize([3.0, 1.0, 2.0, 10.0])
    assert stats['median'] == 2.5 and stats['min'] == 1.0 and \
        stats['max'] == 10.0 and stats['n'] == 4
    calls = []
    times = interleaved_timings(
        dict(a=lambda: calls.append('a'), b=lambda: calls.append('b')),
        iters=2,
        warmup=1,
        between=lambda: 7)
    assert calls == ['a', 'b', 'a', 'b', 'b', 'a']
    assert len(times['a']) == 2 and times['between'] == [7, 7]
    vocab = write_throwaway_vocab(str(tmp_path), 300)
    tokenizer = build_tokenizer(vocab)
    assert len(tokenizer) == 300 and tokenizer.mask_token_id == 4


def test_synthetic_samples():
    data = synthetic_samples(5, 32, 16, vocab_size=50, caption_len=(4, 9))
    ids = torch.stack(data['inputs']['input_ids'])
    mask = torch.stack(data['inputs']['attention_mask'])
    lengths = mask.sum(1)
    assert ids.shape == (5, 16)
    assert data['inputs']['images'][0].shape == (3, 32, 32)
    assert lengths.min() >= 4 and lengths.max() <= 9
    assert (ids[:, 0] == 2).all() and (ids[mask == 0] == 0).all()
    assert (ids[torch.arange(5), lengths - 1] == 3).all()
    assert [s.product_index for s in data['data_samples']] == list(range(5))
    full = synthetic_samples(2, 8, 16)
    assert torch.stack(full['inputs']['attention_mask']).all()


def test_peak_memory_cpu():
    layer = torch.nn.Linear(256, 256)
    with PeakMemory('cpu', [layer]) as peak:
        hidden = layer(torch.ones(1024, 256))  # 1 MiB
        block = torch.ones(16, 2**20 // 4)  # 16 MiB, freed at once
        del block
        hidden.sum().backward()
    params = 256 * 257 * 4
    assert peak.start_bytes == params
    assert 17 * 2**20 <= peak.increase_bytes < 20 * 2**20
    assert peak.peak_bytes == peak.start_bytes + peak.increase_bytes


def test_baseline_config_and_file_agree():
    fast = Config.fromfile(osp.join(BENCH, 'mvlt_pvt-tiny_256px.py'))
    from_file = Config.fromfile(
        osp.join(BENCH, 'mvlt_pvt-tiny_256px_baseline.py'))
    derived = baseline_config(fast)
    assert fast.optim_wrapper.optimizer.fused is True
    assert fast.model.get('compute_mode', 'fast') == 'fast'
    for cfg in (from_file, derived):
        assert cfg.model.compute_mode == 'baseline'
        assert cfg.optim_wrapper.optimizer.fused is None
        assert cfg.optim_wrapper.optimizer.get('foreach') is None
    # The copy is deep: the fast config is untouched.
    assert fast.model.get('compute_mode', 'fast') == 'fast'


def test_tool_train_mode(tmp_path):
    tool = load_tool()
    out = tmp_path / 'train.json'
    result = tool.main(TINY_RUN + ['--no-memory', '--out', str(out)])
    saved = json.loads(out.read_text())
    assert saved['variants'].keys() == result['variants'].keys() == {
        'fast', 'baseline'
    }
    assert result['flops_per_sample'] > 0
    fast = result['variants']['fast']
    assert fast['samples_per_s']['n'] == 2 and fast['samples_per_s'][
        'median'] > 0
    assert fast['speedup_vs_baseline']['median'] > 0
    assert 0 < fast['fraction_of_matmul']['median']
    assert result['matmul_gflops']['fp32']['median'] > 0
    assert result['settings']['pairs_per_step'] == 4


@pytest.mark.slow
def test_tool_train_compile():
    tool = load_tool()
    result = tool.main(TINY_RUN + [
        '--no-memory', '--no-baseline', '--iters', '1', '--compile',
        '--compile-backend', 'aot_eager'
    ])
    assert set(result['variants']) == {'fast', 'fast+compile'}
    assert result['variants']['fast+compile']['samples_per_s']['median'] > 0


@pytest.mark.slow
def test_tool_train_memory():
    tool = load_tool()
    result = tool.main(TINY_RUN + ['--iters', '1'])
    memory = result['memory']
    assert set(memory) == {'fast', 'baseline'}
    assert all(m['increase_bytes'] > 0 for m in memory.values())
    assert all(m['start_bytes'] > 0 for m in memory.values())
    assert result['memory_ratio_fast_vs_baseline']['increase'] > 0


def test_tool_retrieval_mode():
    tool = load_tool()
    result = tool.main(TINY_RUN + [
        '--mode', 'retrieval', '--batch-size', '6', '--caption-len', '4', '9'
    ])
    assert set(result['variants']) == {'fast', 'baseline'}
    assert result['max_abs_score_difference']['baseline'] < 1e-4
    assert result['variants']['fast']['pairs_per_s']['median'] > 0
    estimate = result['coco5k_estimate']
    assert estimate['exact_pairs'] == 125_000_000
    assert 0 < estimate['rerank_minutes'] < estimate['exact_hours'] * 60


def test_tool_sweep():
    tool = load_tool()
    result = tool.main(TINY_RUN + [
        '--sweep', '--sweep-img-sizes', '32', '64', '--sweep-text-lens', '8',
        '16', '--iters', '1', '--warmup', '0'
    ])
    sweep = result['sweep']
    assert [(r['img_size'], r['text_len'])
            for r in sweep['rows']] == [(32, 16), (64, 16), (32, 8)]
    assert all(r['seconds'] > 0 and r['gflops_per_sample'] > 0
               for r in sweep['rows'])
    # 4x the visual tokens: the exponent is a finite slope (its value is a
    # measurement, not checked here).
    assert sweep['exponent_sizes'] == [32, 64]
    assert isinstance(sweep['exponent'], float)


def test_tool_data_mode(nano_data):
    tool = load_tool()
    options = nano_cfg_options(nano_data)
    args = [
        NANO_CONFIG, '--mode', 'data', '--iters', '5', '--warmup', '1',
        '--batch-size', '4', '--no-malloc-tuning', '--cfg-options'
    ] + [f'{k}={v}' for k, v in options.items()]
    result = tool.main(args)
    # 16 images in batches of 4: the loader is restarted between epochs.
    assert result['settings']['batches'] == 5
    assert result['data_samples_per_s']['overall'] > 0
    assert result['model_settings']['img_size'] == 64
    assert result['data_vs_model'] > 0


def test_tool_data_mode_needs_a_loader(tmp_path):
    tool = load_tool()
    cfg = Config.fromfile(osp.join(BENCH, 'mvlt_pvt-tiny_256px.py'))
    path = tmp_path / 'model_only.py'
    cfg.dump(str(path))
    with pytest.raises(KeyError, match='train_dataloader'):
        tool.main([str(path), '--mode', 'data', '--no-malloc-tuning'])
    assert copy.deepcopy(cfg).model.type == 'MVLT'
