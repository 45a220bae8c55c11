"""Shared fixtures: every test makes its own data; nothing is downloaded."""
import importlib.util
import json
import os
import os.path as osp
import signal
import subprocess
import tempfile

import cv2
import numpy as np
import pytest

from mvlt.utils.cfg_options import cfg_options_argv

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The tests' own configs (tests/configs/): not model-zoo experiments.
NANO_CONFIG = osp.join(REPO, 'tests', 'configs', 'mvlt_nano_cpu_jsonl.py')
BENCHMARK_CONFIGS = osp.join(REPO, 'configs', 'mvlt', 'benchmark')


def baseline_of(cfg):
    """A copy of ``cfg`` (an mmengine ``Config``) with the changes the
    benchmark's baseline config
    (configs/mvlt/benchmark/mvlt_pvt-tiny_256px_baseline.py) makes to the
    config it derives from: the baseline is stated once, there."""
    import copy

    from benchmark_modes.measure import config_changes
    from mmengine.config import Config
    keys = ('model', 'optim_wrapper')
    fast = Config.fromfile(
        osp.join(BENCHMARK_CONFIGS, 'mvlt_pvt-tiny_256px.py'))
    base = Config.fromfile(
        osp.join(BENCHMARK_CONFIGS, 'mvlt_pvt-tiny_256px_baseline.py'))
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict(
        config_changes({k: fast.get(k)
                        for k in keys}, {k: base.get(k)
                                         for k in keys}))
    return cfg


#: An ITC head sized for the nano model (T^4 / V^4 width 128).
NANO_ITC = dict(
    type='ITCHead', visual_channels=128, text_channels=128, embed_dim=32)


def save_model_checkpoint(model_cfg: dict, path: str, seed: int = 0) -> str:
    """Build a model with a fixed seed and save its random weights as an
    MMEngine checkpoint (``state_dict`` and an empty ``meta``) at ``path``.
    """
    import copy

    import torch

    from mvlt.registry import MODELS
    from mvlt.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(model_cfg))
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def run_python(code: str, cwd: str = REPO, env: dict = None) -> str:
    """Run ``python -c code`` in a fresh interpreter (``cwd``, ``env``:
    default this process's environment); assert that it succeeded (the
    failure shows the end of its stderr) and return its stdout."""
    import sys
    result = subprocess.run([sys.executable, '-c', code],
                            cwd=cwd,
                            env=env,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def save_without_heads(state_dict: dict, path: str, *heads: str) -> str:
    """Save ``state_dict`` less the weights of ``heads`` (names under
    ``model.heads``) as an MMEngine checkpoint at ``path``: a checkpoint
    trained without those heads."""
    import torch
    prefixes = tuple(f'heads.{name}.' for name in heads)
    torch.save(
        dict(
            state_dict={
                k: v
                for k, v in state_dict.items() if not k.startswith(prefixes)
            },
            meta={}), path)
    return path


COLOURS = {
    'red': (220, 30, 30),
    'green': (30, 180, 40),
    'blue': (30, 60, 220),
    'yellow': (230, 210, 30)
}
SHAPES = ('circle', 'square')
CATEGORY = {'circle': 'ROUND', 'square': 'ANGULAR'}


def draw_product(colour: str,
                 shape: str,
                 view: int,
                 size: int = 64) -> np.ndarray:
    """A white RGB image with one coloured shape; views shift it a little."""
    img = np.full((size, size, 3), 255, np.uint8)
    centre = (size // 2 + 3 * view, size // 2 - 2 * view)
    rgb = COLOURS[colour]
    if shape == 'circle':
        cv2.circle(img, centre, size // 4, rgb, -1)
    else:
        half = size // 4
        cv2.rectangle(img, (centre[0] - half, centre[1] - half),
                      (centre[0] + half, centre[1] + half), rgb, -1)
    return img


def write_jsonl_dataset(root: str, views: int = 2) -> dict:
    """Write images/, train.jsonl, test.jsonl and vocab.txt under root."""
    from mvlt.text import build_vocab
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    rows = []
    product = 0
    for colour in COLOURS:
        for shape in SHAPES:
            caption = f'a {colour} {shape} on a white background'
            for view in range(views):
                name = f'{colour}_{shape}_{view}.png'
                img = draw_product(colour, shape, view)
                cv2.imwrite(osp.join(root, 'images', name), img[..., ::-1])
                rows.append(
                    dict(
                        img_path=name,
                        caption=caption,
                        product_id=product,
                        category=CATEGORY[shape],
                        subcategory=f'{shape.upper()}_{colour}'))
            product += 1
    for split in ('train', 'test'):
        with open(osp.join(root, f'{split}.jsonl'), 'w') as f:
            for row in rows:
                f.write(json.dumps(row) + '\n')
    vocab = build_vocab((r['caption'] for r in rows), root, vocab_size=200)
    return dict(root=root, vocab=vocab, rows=rows)


def nano_cfg_options(data: dict, work_dir: str = None) -> dict:
    """--cfg-options that point the nano config at a generated data set."""
    options = {
        'model.data_preprocessor.tokenizer.vocab_file': data['vocab'],
        'train_dataloader.dataset.data_root': data['root'],
        'test_dataloader.dataset.data_root': data['root'],
    }
    if work_dir:
        options['work_dir'] = work_dir
    return options


def cfg_options_args(options: dict) -> list:
    """Command-line form of :func:`nano_cfg_options` (the tools' own
    :func:`mvlt.utils.cfg_options.cfg_options_argv`)."""
    return cfg_options_argv(options)


def load_tool(relative_path: str):
    """A script under tools/ as a module."""
    path = osp.join(REPO, 'tools', relative_path)
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def point_vocab(node, vocab: str) -> None:
    """Set every ``vocab_file`` of a config (model and pipelines) to
    ``vocab``, wherever the tokenizer settings live."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'vocab_file':
                node[key] = vocab
            else:
                point_vocab(value, vocab)
    elif isinstance(node, (list, tuple)):
        for value in node:
            point_vocab(value, vocab)


def write_plugin_config(config, module: str, source: str, model: str):
    """Write a plug-in module ``<module>.py`` (``source``) beside ``config``
    (a ``pathlib.Path``) and there a config that inherits the nano config,
    imports the plug-in through ``custom_imports`` and sets ``model =``
    ``model`` (Python source); returns ``config``."""
    (config.parent / f'{module}.py').write_text(source)
    config.write_text(f'_base_ = [{NANO_CONFIG!r}]\n'
                      f'custom_imports = dict(imports=[{module!r}], '
                      'allow_failed_imports=False)\n'
                      f'model = {model}\n')
    return config


def train_batch(cfg, size: int = 8) -> dict:
    """The first ``size`` samples of a config's training set, collated."""
    from mmengine.dataset import pseudo_collate

    from mvlt.registry import DATASETS
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return pseudo_collate([dataset[i] for i in range(size)])


def train_steps(model,
                batch: dict,
                steps: int,
                lr: float,
                fixed_inputs: bool = False) -> list:
    """``steps`` AdamW steps of ``model`` on one batch; returns each step's
    losses (floats). With ``fixed_inputs`` the masks and the ITM pairs are
    drawn once (the generator state is restored before every step), else
    anew every step."""
    import torch
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    history, data, state = [], None, None
    for _ in range(steps):
        if data is None or not fixed_inputs:
            data = model.data_preprocessor(batch, True)
            state = model.data_preprocessor.rng_state()
        elif state is not None:
            model.data_preprocessor.load_rng_state(state)
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if k.startswith('loss'))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    return history


def start_tool(command: list, env: dict) -> subprocess.Popen:
    """Start ``command`` in the repository, its stdout and stderr going to
    temporary files; ``finish_tool`` waits for it.

    For two independent runs of one test: each tool the tests start runs
    one thread (``OMP_NUM_THREADS=1``), so on the suite's two cores a run
    started here goes on while the test does the other.
    """
    stdout, stderr = tempfile.TemporaryFile('w+'), tempfile.TemporaryFile('w+')
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=stdout, stderr=stderr, text=True)
    process.logs = stdout, stderr
    return process


def finish_tool(process: subprocess.Popen,
                returncode: int = 0) -> subprocess.CompletedProcess:
    """Wait for a ``start_tool`` process; its exit status and output, as
    ``subprocess.run`` gives them. Asserts the exit status ``returncode``
    (None: any)."""
    code = process.wait()
    outputs = []
    for log in process.logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    result = subprocess.CompletedProcess(process.args, code, *outputs)
    if returncode is not None:
        assert code == returncode, (result.stdout + result.stderr)[-3000:]
    return result


def kill_when(command: list, env: dict, stop) -> str:
    """Run ``command`` in the repository and SIGKILL it at the first output
    line for which ``stop(line)`` is true; returns the output, asserting
    that the process ended by that kill."""
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if stop(line):
            os.kill(process.pid, signal.SIGKILL)
            break
    process.stdout.close()
    log = ''.join(lines)
    assert process.wait() == -signal.SIGKILL, log[-3000:]
    return log


@pytest.fixture(scope='session')
def nano_data(tmp_path_factory) -> dict:
    """A small JSON-lines image-caption set (8 products x 2 views)."""
    return write_jsonl_dataset(str(tmp_path_factory.mktemp('nano_data')))


@pytest.fixture(scope='session')
def nano_config(nano_data):
    """The nano config pointed at ``nano_data``."""
    from mmengine.config import Config
    cfg = Config.fromfile(NANO_CONFIG)
    cfg.merge_from_dict(nano_cfg_options(nano_data))
    return cfg


@pytest.fixture(scope='session')
def synthetic_fashiongen(tmp_path_factory) -> dict:
    """A small synthetic Fashion-Gen (HDF5 release layout, 64 px): 24 train
    and 10 validation products of 1-3 views, and its vocabulary.

    The dict is ``write_synthetic_fashiongen``'s (``train``, ``validation``,
    ``vocab``, ``num_images``, ``num_products``) plus ``root``.
    """
    from mvlt.datasets.synthetic import write_synthetic_fashiongen
    root = str(tmp_path_factory.mktemp('synthetic_fashiongen'))
    data = write_synthetic_fashiongen(
        root,
        train_products=24,
        val_products=10,
        views=(1, 3),
        seed=0,
        img_size=64)
    data['root'] = root
    return data


@pytest.fixture(scope='session')
def synthetic_coco(tmp_path_factory) -> dict:
    """A tiny COCO 2014 layout (see ``write_synthetic_coco``): 6 train, 2
    restval, 2 val and 4 test images of 5 captions (6 for the first image of
    each split)."""
    from mvlt.datasets.synthetic import write_synthetic_coco
    return write_synthetic_coco(str(tmp_path_factory.mktemp('synthetic_coco')))
