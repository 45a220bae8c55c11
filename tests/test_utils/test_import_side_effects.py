"""Importing mvlt changes no global state of MMEngine or torch; the safe
checkpoint loader and the allocator tuning are explicit opt-ins."""
import json
import os
import textwrap

import pytest
import torch
import torch.nn as nn

from conftest import REPO, run_python
from mvlt.engine import MVLTRunner

#: Run in a fresh interpreter: snapshots of global state before and after
#: importing every mvlt package, then after register_all_modules().
SNAPSHOT_SCRIPT = textwrap.dedent('''
    import json

    import mmengine.registry as mmengine_registry
    import torch
    from mmengine.registry import DefaultScope, Registry
    from mmengine.runner import CheckpointLoader
    from torch.utils.flop_counter import flop_registry


    def snapshot():
        # Third-party imports (mmcv) fill MMEngine's roots too; mvlt's
        # classes must only be in its own child registries.
        roots = sorted(
            f'{name}.{key}'
            for name, value in vars(mmengine_registry).items()
            if isinstance(value, Registry)
            for key, cls in value.module_dict.items()
            if getattr(cls, '__module__', '').startswith('mvlt'))
        return dict(
            schemes={
                prefix: f'{loader.__module__}.{loader.__qualname__}'
                for prefix, loader in CheckpointLoader._schemes.items()
            },
            flop_ops=sorted(str(op) for op in flop_registry),
            mvlt_in_mmengine_roots=roots,
            default_scope=str(DefaultScope.get_current_instance()),
            # torch adds its own types as its submodules are imported.
            safe_globals=sorted(
                str(g) for g in torch.serialization.get_safe_globals()
                if 'torch' not in str(g)),
            threads=torch.get_num_threads(),
            cudnn_benchmark=torch.backends.cudnn.benchmark)


    before = snapshot()
    import mvlt  # noqa: F401
    import mvlt.apis  # noqa: F401
    import mvlt.datasets  # noqa: F401
    import mvlt.engine  # noqa: F401
    import mvlt.evaluation  # noqa: F401
    import mvlt.models  # noqa: F401
    import mvlt.utils  # noqa: F401
    import mvlt.visualization  # noqa: F401
    after_import = snapshot()
    local_before = CheckpointLoader._get_checkpoint_loader('/ckpt/epoch_1.pth')
    mvlt.utils.register_all_modules()
    local_after = CheckpointLoader._get_checkpoint_loader('/ckpt/epoch_1.pth')
    print(json.dumps(dict(
        before=before,
        after_import=after_import,
        local_before=local_before.__module__,
        local_after=f'{local_after.__module__}.{local_after.__name__}',
        http_after=CheckpointLoader._get_checkpoint_loader(
            'https://x/y.pth').__module__)))
''')


def _snapshots() -> dict:
    env = dict(os.environ, PYTHONPATH=REPO, HF_HUB_OFFLINE='1')
    out = run_python(SNAPSHOT_SCRIPT, env=env)
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_import_mvlt_changes_no_global_state():
    states = _snapshots()
    before, after = states['before'], states['after_import']
    for key in before:
        assert after[key] == before[key], key
    # MMEngine's own loaders until register_all_modules() opts in.
    assert states['local_before'] == 'mmengine.runner.checkpoint'
    assert states['local_after'] == 'mvlt.utils.checkpoint._load_local'
    assert states['http_after'] == 'mmengine.runner.checkpoint'


class _Model(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)


def test_runner_tunes_the_allocator_only_when_configured(
        tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr('mvlt.engine.runner.tune_cpu_allocator',
                        lambda: calls.append(1) or True)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    runner = MVLTRunner(
        model=_Model(),
        work_dir=str(tmp_path / 'plain'),
        env_cfg=dict(dist_cfg=dict(backend='gloo')))
    assert calls == []
    runner.setup_env(dict(cpu_malloc_tuning=False))
    assert calls == []
    MVLTRunner(
        model=_Model(),
        work_dir=str(tmp_path / 'tuned'),
        env_cfg=dict(cpu_malloc_tuning=True))
    assert calls == [1]
    # With a GPU the CPU heap is not the bottleneck: left alone.
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    runner.setup_env(dict(cpu_malloc_tuning=True))
    assert calls == [1]
