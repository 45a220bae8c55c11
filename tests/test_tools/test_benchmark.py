"""The speed benchmark's helpers and tool on tiny settings (behaviour only)."""
import copy
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from benchmark_modes.measure import (PeakMemory, config_changes, count_flops,
                                     growth_exponent, interleaved_timings,
                                     summarize, synthetic_samples,
                                     write_throwaway_vocab)
from mmengine.config import Config

from conftest import (NANO_CONFIG, REPO, baseline_of, nano_cfg_options,
                      run_python)
from mvlt.text import build_tokenizer

BENCH = osp.join(REPO, 'configs', 'mvlt', 'benchmark')
# A nano model at 32 px with captions of 16 tokens: seconds per step.
TINY_RUN = [
    NANO_CONFIG, '--img-size', '32', '--text-len', '16', '--batch-size', '4',
    '--iters', '2', '--warmup', '1', '--no-malloc-tuning'
]


@pytest.fixture(scope='module')
def nano_baseline(tmp_path_factory) -> str:
    """The nano config with the changes of the benchmark's baseline config
    (configs/mvlt/benchmark/mvlt_pvt-tiny_256px_baseline.py), as a file."""
    cfg = baseline_of(Config.fromfile(NANO_CONFIG))
    path = str(tmp_path_factory.mktemp('baseline') / 'nano_baseline.py')
    cfg.dump(path)
    return path


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
    cpu = interleaved_timings(
        dict(a=lambda: sum(range(10**5))), iters=1, warmup=0, clock='process')
    assert cpu['a'][0] > 0
    with pytest.raises(ValueError, match='clock'):
        interleaved_timings(dict(a=lambda: 0), 1, 0, clock='gpu')
    vocab = write_throwaway_vocab(str(tmp_path), 300)
    tokenizer = build_tokenizer(vocab)
    assert len(tokenizer) == 300 and tokenizer.mask_token_id == 4
    # A real vocabulary's entries first, made-up pieces up to the size.
    small = tmp_path / 'small'
    small.mkdir()
    (small / 'vocab.txt').write_text('[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n'
                                     'red\nshirt\n')
    padded = build_tokenizer(
        write_throwaway_vocab(
            str(tmp_path / 'padded'), 50, str(small / 'vocab.txt')))
    assert len(padded) == 50
    assert padded('red shirt')['input_ids'][1:3] == [5, 6]
    with pytest.raises(ValueError, match='entries'):
        write_throwaway_vocab(str(tmp_path), 6, str(small / 'vocab.txt'))


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


def test_config_changes():
    assert config_changes(
        dict(a=1, b=dict(c=2, d=3)), dict(a=1, b=dict(c=2, d=4), e=5)) == {
            'b.d': 4,
            'e': 5
        }
    assert config_changes(1, 1) == {} and config_changes(1, 2, 'x') == {'x': 2}


def test_baseline_config_changes_per_module_options():
    """The baseline is configuration: per-module options, stated once."""
    fast = Config.fromfile(osp.join(BENCH, 'mvlt_pvt-tiny_256px.py'))
    base = Config.fromfile(osp.join(BENCH, 'mvlt_pvt-tiny_256px_baseline.py'))
    changes = config_changes(fast.to_dict(), base.to_dict())
    assert fast.optim_wrapper.optimizer.fused is True
    assert changes == {
        'model.trim_padding': False,
        'model.predict_tasks': ('mir', 'itm', 'mlm'),
        'model.backbone.attn_impl': 'eager',
        'model.backbone.recompute_gelu': False,
        'model.backbone.onednn': False,
        'model.heads.mlm.logits_at': 'all',
        'optim_wrapper.optimizer.fused': None,
        'optim_wrapper.optimizer.foreach': None,
    }


@pytest.mark.slow
def test_tool_train_mode(tmp_path, nano_baseline):
    tool = load_tool()
    out = tmp_path / 'train.json'
    result = tool.main(
        TINY_RUN +
        ['--baseline', nano_baseline, '--no-memory', '--out',
         str(out)])
    saved = json.loads(out.read_text())
    assert saved['variants'].keys() == result['variants'].keys() == {
        'fast', 'baseline'
    }
    changes = result['baseline_changes']
    assert changes['model.backbone.attn_impl'] == 'eager'
    # Both models read the same made-up vocabulary.
    assert not any('tokenizer' in key for key in changes)
    assert result['flops_per_sample'] > 0
    # The baseline computes the MLM logits at every position.
    assert result['baseline_flops_per_sample'] > result['flops_per_sample']
    fast = result['variants']['fast']
    assert fast['samples_per_s']['n'] == 2 and fast['samples_per_s'][
        'median'] > 0
    assert fast['speedup_vs_baseline']['median'] > 0
    assert 0 < fast['fraction_of_matmul']['median']
    assert result['matmul_gflops']['fp32']['median'] > 0
    assert result['settings']['pairs_per_step'] == 4
    # Without --baseline the config is timed alone; CPU time of the process.
    alone = tool.main(TINY_RUN +
                      ['--no-memory', '--iters', '1', '--clock', 'process'])
    assert set(alone['variants']) == {'fast'}
    assert alone['settings']['clock'] == 'process'
    assert alone['variants']['fast']['seconds']['median'] > 0


@pytest.mark.slow
def test_tool_train_compile():
    tool = load_tool()
    result = tool.main(TINY_RUN + [
        '--no-memory', '--iters', '1', '--compile', '--compile-backend',
        'aot_eager'
    ])
    assert set(result['variants']) == {'fast', 'fast+compile'}
    compiled = result['variants']['fast+compile']
    assert compiled['samples_per_s']['median'] > 0
    assert compiled['speedup_vs_fast']['median'] > 0
    assert result['settings']['compile']['torch']['backend'] == 'aot_eager'


@pytest.mark.slow
def test_tool_train_memory(nano_baseline):
    tool = load_tool()
    result = tool.main(TINY_RUN +
                       ['--baseline', nano_baseline, '--iters', '1'])
    memory = result['memory']
    assert set(memory) == {'fast', 'baseline'}
    assert all(m['increase_bytes'] > 0 for m in memory.values())
    assert all(m['start_bytes'] > 0 for m in memory.values())
    assert result['memory_ratio_fast_vs_baseline']['increase'] > 0


@pytest.mark.slow
def test_tool_retrieval_mode(nano_baseline):
    tool = load_tool()
    result = tool.main(TINY_RUN + [
        '--baseline', nano_baseline, '--mode', 'retrieval', '--batch-size',
        '6', '--caption-len', '4', '9'
    ])
    assert set(result['variants']) == {'fast', 'baseline'}
    assert result['max_abs_score_difference']['baseline'] < 1e-4
    assert result['variants']['fast']['pairs_per_s']['median'] > 0
    estimate = result['coco5k_estimate']
    assert estimate['exact_pairs'] == 125_000_000
    assert 0 < estimate['rerank_minutes'] < estimate['exact_hours'] * 60


@pytest.mark.slow
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


def data_args(nano_data, mode: str) -> list:
    options = nano_cfg_options(nano_data)
    return [
        NANO_CONFIG, '--mode', mode, '--iters', '5', '--warmup', '1',
        '--batch-size', '4', '--no-malloc-tuning', '--cfg-options'
    ] + [f'{k}={v}' for k, v in options.items()]


@pytest.mark.slow
def test_tool_data_mode(nano_data):
    tool = load_tool()
    result = tool.main(
        data_args(nano_data, 'data') +
        ['--workers', '1', '--target-rate', '1000'])
    # One loader process, then one worker; 16 images in batches of 4: the
    # loader is restarted between epochs.
    assert [r['num_workers'] for r in result['runs']] == [0, 1]
    assert all(r['batches'] == 5 and r['samples_per_s'] > 0
               for r in result['runs'])
    per_process = result['per_process_samples_per_s']
    assert per_process == result['runs'][0]['samples_per_s']
    assert result['processes_needed'] == -(-1000 // per_process)
    assert result['model_settings']['img_size'] == 64
    assert set(result['data_vs_model']) == {'0', '1'}


def test_tool_e2e_mode(nano_data):
    tool = load_tool()
    result = tool.main(data_args(nano_data, 'e2e') + ['--workers', '0', '1'])
    runs = result['runs']
    assert [r['num_workers'] for r in runs] == [0, 1]
    for run in runs:
        assert run['steps'] == 5 and 0 <= run['wait_share'] < 1
        # End to end is the step rate diluted by the waiting.
        assert run['samples_per_s'] == pytest.approx(
            run['step_only_samples_per_s'] * (1 - run['wait_share']))


def test_tool_data_mode_needs_a_loader(tmp_path):
    tool = load_tool()
    cfg = Config.fromfile(osp.join(BENCH, 'mvlt_pvt-tiny_256px.py'))
    path = tmp_path / 'model_only.py'
    cfg.dump(str(path))
    for mode in ('data', 'e2e'):
        with pytest.raises(KeyError, match='train_dataloader'):
            tool.main([str(path), '--mode', mode, '--no-malloc-tuning'])
    assert copy.deepcopy(cfg).model.type == 'MVLT'


@pytest.mark.slow
def test_tool_runs_without_optional_packages():
    """A bare GPU image lacks mmpretrain and pycocotools: the train and
    retrieval modes (register_all_modules included) must not need them."""
    blocked = ('mmpretrain', 'pycocotools', 'torchmetrics', 'faiss', 'gradio',
               'matplotlib')
    code = (f'import sys\nfor name in {blocked!r}:\n'
            '    sys.modules[name] = None\n'
            'sys.path[:0] = ["tests", "tools/analysis_tools"]\n'
            'from test_tools.test_benchmark import TINY_RUN, load_tool\n'
            'tool = load_tool()\n'
            'for mode in ("train", "retrieval"):\n'
            '    tool.main(TINY_RUN + ["--mode", mode, "--no-memory", '
            '"--iters", "1"])\n')
    run_python(code)


@pytest.mark.slow
def test_tool_embed_mode(tmp_path):
    """--mode embed: both towers of MVLT and of CLIP ViT-B/32 (random
    weights), PyTorch and ONNX Runtime, with their multiply-adds."""
    pytest.importorskip('open_clip', reason='requirements/optional.txt')
    pytest.importorskip('onnxruntime', reason='requirements/optional.txt')
    cfg = Config.fromfile(NANO_CONFIG)
    cfg.model.heads.itc = dict(
        type='ITCHead', visual_channels=128, text_channels=128, embed_dim=32)
    config = str(tmp_path / 'nano_itc.py')
    cfg.dump(config)
    result = load_tool().main([
        config, '--mode', 'embed', '--device', 'cpu', '--batch-size', '2',
        '--iters', '1', '--warmup', '0', '--caption-len', '8',
        '--no-malloc-tuning'
    ])
    towers = ('mvlt_image', 'clip_image', 'mvlt_caption', 'clip_caption')
    assert set(result['items_per_s']) == {
        f'{tower}/{backend}'
        for tower in towers for backend in ('pytorch', 'onnxruntime')
    }
    for tower in towers:
        assert result['max_abs_onnx_difference'][tower] <= 1e-4
    # ViT-B/32: the 4.4 GMACs per 224-px image usually quoted for it;
    # counted here without the element-wise work.
    assert 4.0e9 < result['macs_per_item']['clip_image'] < 4.6e9
    assert result['macs_per_item']['mvlt_image'] < 1e9
    assert result['mvlt_over_clip']['image/faster_backend']['median'] > 0
