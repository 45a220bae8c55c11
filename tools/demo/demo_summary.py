"""Print what the offline demo measured and where its results are.

    python tools/demo/demo_summary.py --work-dir work_dirs/demo \
        [--checkpoint CKPT] [--seconds name=N ...]

Reads ``<work-dir>/retrieval/test_metrics.json`` and
``<work-dir>/mig/test_metrics.json`` written by ``tools/test.py``.
"""
import argparse
import glob
import json
import os.path as osp
import sys

#: R@5 of a random ranking of 101 candidates (1 positive), in %.
CHANCE_R5 = 5 / 101 * 100


def load_metrics(path: str) -> dict:
    """The ``metrics`` dict of a test_metrics.json file."""
    if not osp.isfile(path):
        sys.exit(f'{path} is missing: did tools/test.py run?')
    with open(path, encoding='utf-8') as f:
        return json.load(f)['metrics']


def pick(metrics: dict, suffix: str) -> float:
    """The one metric whose key ends with ``suffix``."""
    found = [v for k, v in metrics.items() if k.endswith(suffix)]
    if len(found) != 1:
        sys.exit(f'expected one metric ending in {suffix!r}, found '
                 f'{len(found)} in {sorted(metrics)}')
    return float(found[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--checkpoint', default='')
    parser.add_argument(
        '--seconds', nargs='*', default=[], help='name=seconds pairs')
    args = parser.parse_args()

    retrieval = load_metrics(
        osp.join(args.work_dir, 'retrieval', 'test_metrics.json'))
    mig = load_metrics(osp.join(args.work_dir, 'mig', 'test_metrics.json'))
    print('\n==== MVLT offline demo (synthetic Fashion-Gen, CPU) ====')
    print('Zero-shot retrieval on the validation split, 101 candidates per '
          f'query (chance R@5 = {CHANCE_R5:.1f} %):')
    passed = True
    for direction in ('TIR', 'ITR'):
        values = [pick(retrieval, f'{direction}/R@{k}') for k in (1, 5, 10)]
        print(f'  {direction}  R@1 {values[0]:5.1f}   R@5 {values[1]:5.1f}   '
              f'R@10 {values[2]:5.1f}')
        passed &= values[1] >= 40.0
    print('Masked image generation (r_v = 0.5): PSNR '
          f"{pick(mig, 'psnr_masked'):.2f} dB on masked pixels, "
          f"{pick(mig, 'psnr_whole'):.2f} dB whole image; SSIM "
          f"{pick(mig, 'ssim_masked'):.3f} / {pick(mig, 'ssim_whole'):.3f}")
    if args.seconds:
        print('Time: ' +
              ', '.join(f"{name} {int(value) // 60}:{int(value) % 60:02d}"
                        for name, value in (s.split('=', 1)
                                            for s in args.seconds)))
    figures = sorted(
        glob.glob(
            osp.join(args.work_dir, 'mig', 'figures', '**', '*.png'),
            recursive=True))
    print('Results:')
    print(f'  checkpoint            {args.checkpoint}')
    print('  retrieval metrics     ' +
          osp.join(args.work_dir, 'retrieval', 'test_metrics.json'))
    print('  retrieval top-5 PNGs  ' +
          osp.join(args.work_dir, 'retrieval', 'figures'))
    print('  MIG metrics           ' +
          osp.join(args.work_dir, 'mig', 'test_metrics.json'))
    print(f'  MIG triplet PNGs      {len(figures)} files in ' +
          osp.join(args.work_dir, 'mig', 'figures'))
    print('R@5 >= 40 % in both directions: ' + ('yes' if passed else 'NO'))


if __name__ == '__main__':
    main()
