"""Export a trained MVLT's ITC image tower, ITC text tower and ITM matcher
to ONNX, checked against PyTorch with ONNX Runtime.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out DIR \
        [--opset 17] [--tolerance 1e-4] [--cfg-options ...]

DIR receives ``itc_image_tower.onnx``, ``itc_text_tower.onnx``,
``itm_matcher.onnx`` (whichever heads the model has), ``vocab.txt`` and
``manifest.json`` (checkpoint SHA-256, preprocessing facts, vocabulary and
its SHA-256, opset, the measured differences). Serve them without torch:
``python tools/demo/search_app.py INDEX --backend onnxruntime --onnx DIR``
(docs/deployment.md). Needs onnx and onnxruntime
(requirements/optional.txt).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mvlt.utils.cli import model_parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = model_parser(
        __doc__.split('\n')[0],
        device=False,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='export folder')
    parser.add_argument('--opset', type=int, default=None, help='ONNX opset')
    parser.add_argument(
        '--tolerance',
        type=float,
        default=None,
        help='largest accepted |ONNX Runtime - PyTorch| (default 1e-4)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Export and check; return the manifest.

    Raises:
        SystemExit: A missing checkpoint, a missing optional requirement, a
            test pipeline with image steps the ONNX backend would not run,
            or a graph outside the tolerance.
    """
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        sys.exit(f'Checkpoint {args.checkpoint} does not exist.')
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        sys.exit('export_onnx.py needs onnx and onnxruntime: pip install -r '
                 'requirements/optional.txt')
    from mvlt.apis import MVLTInferencer
    from mvlt.deploy import ManifestMismatchError
    from mvlt.deploy.onnx_export import OPSET, TOLERANCE, export_onnx
    inferencer = MVLTInferencer(
        args.config, args.checkpoint, cfg_options=args.cfg_options)
    steps = [type(t).__name__ for t in inferencer.image_pipeline.transforms]
    if steps:
        sys.exit(f'{args.config}: the test pipeline has image steps {steps} '
                 'that the ONNX Runtime backend does not run (it runs only '
                 'the data preprocessor\'s crop, resize and normalisation); '
                 'move them into model.data_preprocessor or drop them.')
    try:
        manifest = export_onnx(
            inferencer.model,
            args.checkpoint,
            args.out,
            inferencer.cfg.model.data_preprocessor.tokenizer,
            config_source=args.config,
            opset=args.opset or OPSET,
            tolerance=args.tolerance or TOLERANCE)
    except ManifestMismatchError as err:
        sys.exit(str(err))
    print(f'ONNX graphs of {args.checkpoint} ({", ".join(manifest["graphs"])})'
          f' and manifest.json -> {args.out}')
    return manifest


if __name__ == '__main__':
    main()
