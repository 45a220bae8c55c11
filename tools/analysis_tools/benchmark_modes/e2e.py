"""The end-to-end mode of tools/analysis_tools/search_benchmark.py: a
generated shop catalogue indexed by a trained model, with the figures of its
build (rate, time per stage, size on disk, measured recall).

The catalogue is written once by
:func:`mvlt.datasets.synthetic.write_synthetic_catalogue` (tar shards of the
demo's garment drawer) and reused by later runs; the build is
``tools/misc/build_search_index.py`` run as a user runs it, so a killed run
resumes after its last finished embedding shard.
"""
import importlib.util
import os
import os.path as osp
import time
from typing import Dict, List

from mvlt.datasets.shards import read_manifest

#: The index builder the end-to-end mode runs.
BUILD_TOOL = osp.join(
    osp.dirname(osp.abspath(__file__)), '..', '..', 'misc',
    'build_search_index.py')


def ensure_catalogue(spec: str, num_images: int, workers: int = 0) -> dict:
    """The manifest of the synthetic catalogue named by ``spec``
    (``[shards:]DIR/manifest.json``), written now if DIR has none (drawn
    by ``workers`` spawned processes; 0: this one).

    Raises:
        SystemExit: ``spec`` is not a manifest path, or DIR holds a
            catalogue of another size.
    """
    path = spec.split(':', 1)[1] if spec.startswith('shards:') else spec
    path = osp.abspath(path)
    if osp.basename(path) != 'manifest.json':
        raise SystemExit(f'--generate writes tar shards: give --gallery '
                         f'DIR/manifest.json, not {spec}.')
    if osp.exists(path):
        manifest = read_manifest(path)
        if manifest['samples'] != num_images:
            raise SystemExit(
                f'{path} holds {manifest["samples"]} photos, not '
                f'{num_images}; choose another folder for --gallery.')
        return manifest
    from mvlt.datasets.synthetic import write_synthetic_catalogue
    start = time.perf_counter()
    manifest = write_synthetic_catalogue(
        osp.dirname(path), num_images, workers=workers)
    print(f'Catalogue: {manifest["samples"]} photos of '
          f'{manifest["products"]} products in {len(manifest["shards"])} '
          f'shards ({manifest["bytes"] / 2**20:.0f} MiB) written in '
          f'{time.perf_counter() - start:.0f} s -> {path}')
    return manifest


def run_build_tool(argv: List[str]) -> dict:
    """Build an index with ``tools/misc/build_search_index.py`` itself
    (its ``main(argv)``, in this process), so that the figures are the
    tool's as a user runs it; return its meta data.

    Raises:
        SystemExit: what the tool exits with (bad arguments, a model
            without an ITC head...).
    """
    spec = importlib.util.spec_from_file_location(
        'build_search_index', BUILD_TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.main(argv)


def _bytes_under(path: str) -> int:
    if osp.isfile(path):
        return osp.getsize(path)
    return sum(
        osp.getsize(osp.join(folder, name))
        for folder, _, names in os.walk(path) for name in names)


def build_figures(meta: dict, index_dir: str) -> dict:
    """What the build of ``index_dir`` cost and gave: its time per stage,
    its size on disk per part (the embedding shards are the resumable
    build's and can be deleted once the index is written), the recall@10
    of its tables against exact search (measured by the builder) and the
    ranking comparison."""
    parts: Dict[str, int] = {}
    for name in sorted(os.listdir(index_dir)):
        if name.endswith('.log'):
            continue
        parts[name] = _bytes_under(osp.join(index_dir, name))
    ann = meta.get('ann') or {}
    return dict(
        stage_seconds=meta.get('stage_seconds'),
        index_files_bytes=parts,
        index_bytes=sum(v for k, v in parts.items() if k != 'shards'),
        ann={
            table: {
                key: entry.get(key)
                for key in ('factory', 'params', 'recall_at_10', 'queries',
                            'index_bytes')
            }
            for table, entry in ann.items()
        },
        ranking=meta.get('ranking'),
        cpu=cpu_model(),
        threads=int(os.environ.get('OMP_NUM_THREADS', 0)) or None)


def cpu_model() -> str:
    """The processor's name and widest SIMD from /proc/cpuinfo (Linux),
    e.g. ``'AMD EPYC (AVX2)'``; '' elsewhere."""
    name, flags = '', []
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name') and not name:
                    name = line.split(':', 1)[1].strip()
                elif line.startswith('flags') and not flags:
                    flags = line.split(':', 1)[1].split()
    except OSError:
        return ''
    simd = next((s.upper() for s in ('avx512f', 'avx2') if s in flags), '')
    return f'{name} ({simd})' if simd else name


def print_build_figures(result: dict) -> None:
    """Print the figures of :func:`build_figures`."""
    if 'index_bytes' not in result:
        return
    stages = result.get('stage_seconds') or {}
    print('  stages: ' + ', '.join(f'{k} {v:.1f} s'
                                   for k, v in stages.items()))
    files = ', '.join(f'{name} {size / 2**20:.1f}'
                      for name, size in result['index_files_bytes'].items())
    print(f"  index on disk: {result['index_bytes'] / 2**20:.1f} MiB "
          f'without the embedding shards ({files} MiB)')
    for table, entry in result['ann'].items():
        print(f"  {table}: {entry['factory']} {entry['params']}, recall@10 "
              f"{entry['recall_at_10']:.3f} vs exact search on "
              f"{entry['queries']} held-out queries, "
              f"{entry['index_bytes'] / 2**20:.1f} MiB")
    print(f"  CPU: {result['cpu']} ({os.cpu_count()} logical), threads "
          f"{result['threads']}")
