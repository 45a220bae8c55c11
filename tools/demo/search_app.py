"""A catalogue-search page (gradio) and JSON endpoints over a search index.

    python tools/demo/search_app.py INDEX_DIR [--port 7860] [--host HOST] \
        [--checkpoint CKPT] [--topk 10] [--rerank-k 16] \
        [--backend onnxruntime --onnx EXPORT_DIR]

Build the index first with ``tools/misc/build_search_index.py``. The page
has a text search (top k by ITC, the first k' re-ranked by ITM), an image
upload (the best-matching captions and the most similar products), an
image plus "what to change" (a model with a TGIR head: "like this, but in
red") and a "more like this" link on every result. The same results come
as JSON:

    GET  /api/search?q=long+purple+checked+trousers&k=10&rerank=16
    POST /api/image?k=10&rerank=16      (the image file as the body)
    POST /api/composed?q=is+red&k=10    (the image file as the body)
    GET  /api/similar?row=12&k=10
    GET  /api/info and /metrics         (recall, ranking; Prometheus text)

Private by default: it listens on 127.0.0.1 unless ``--host`` says
otherwise, answers only the Host names it is served under (loopback names,
``--host``, ``--allowed-host``) and only its own origin (DNS rebinding),
never opens a public share link, refuses uploads over
``--max-upload-mb`` and images over ``--max-pixels`` (decompression bombs),
and serves no file but the index's thumbnails and this session's uploads.
gradio is an optional dependency (requirements/optional.txt).

With ``--backend onnxruntime`` the model runs as the ONNX graphs of
``tools/deployment/export_onnx.py`` (refused unless exported from the
index's checkpoint) and this process never imports torch
(docs/deployment.md).
"""
import argparse
import gc
import os
import os.path as osp
import sys
import tempfile
from typing import List, Optional

from mvlt.apis import CatalogueSearch, SearchIndex
from mvlt.apis.catalogue_search import MAX_IMAGE_PIXELS, MAX_QUERY_CHARS
from mvlt.apis.search_app import build_app
from mvlt.apis.search_index import BACKENDS
from mvlt.apis.serving import add_serving_args, serve, worker_argv


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('index_dir', help='folder of build_search_index.py')
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument(
        '--host',
        default='127.0.0.1',
        help='address to listen on (default: this machine only)')
    parser.add_argument(
        '--allowed-host',
        action='append',
        default=[],
        help='a further Host name the page answers (e.g. its DNS name '
        'with --host 0.0.0.0); loopback names and --host always are')
    parser.add_argument(
        '--checkpoint',
        help='the checkpoint, if it has moved since the '
        'index was built (same content)')
    parser.add_argument('--topk', type=int, default=10)
    parser.add_argument(
        '--rerank-k',
        type=int,
        help="k' re-ranked by ITM (default: what the index build measured "
        'best; 16 for an index without the measurement)')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--max-upload-mb', type=float, default=10.0)
    parser.add_argument('--max-pixels', type=int, default=MAX_IMAGE_PIXELS)
    parser.add_argument('--max-query-chars', type=int, default=MAX_QUERY_CHARS)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--backend',
        choices=BACKENDS,
        default='pytorch',
        help='who runs the model: PyTorch, or ONNX Runtime on the graphs '
        'of --onnx (no torch needed)')
    parser.add_argument(
        '--onnx', help='folder of tools/deployment/export_onnx.py')
    parser.add_argument(
        '--threads',
        type=int,
        help='ONNX Runtime threads (default: its own choice)')
    add_serving_args(parser)
    return parser.parse_args(argv)


def open_index(args: argparse.Namespace) -> SearchIndex:
    """The index, checked against its checkpoint and gallery (SystemExit
    naming the problem when it is refused)."""
    try:
        return SearchIndex(
            args.index_dir,
            checkpoint=args.checkpoint,
            device=args.device,
            batch_size=args.batch_size,
            search_params=args.search_params,
            backend=args.backend,
            onnx_dir=args.onnx,
            threads=args.threads)
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        raise SystemExit(str(err)) from None


def open_app(args: argparse.Namespace):
    """The app of one server process (SystemExit: the index is refused)."""
    search = CatalogueSearch(
        open_index(args), max_query_chars=args.max_query_chars)
    return build_app(search, args.host, args.port, args.topk, args.rerank_k,
                     args.max_upload_mb, args.max_pixels, args.allowed_host)


def worker_app():
    """The app factory of each worker process (:mod:`mvlt.apis.serving`)."""
    return open_app(parse_args(worker_argv()))


def main(argv: Optional[List[str]] = None) -> None:
    """Open the index (checked against its checkpoint and gallery) and
    serve the page until interrupted (``--workers N``: N spawned processes,
    :func:`mvlt.apis.serving.serve`)."""
    args = parse_args(argv)
    # Uploads of this service go to a folder of its own, the only one its
    # file routes serve (gradio's default is shared by every gradio app).
    os.environ.setdefault('GRADIO_TEMP_DIR',
                          tempfile.mkdtemp(prefix='mvlt-search-'))
    if args.workers > 1:
        # The index is checked here, before workers start; each worker then
        # opens its own, and the supervisor keeps none (the 100K index of
        # docs/search_at_scale.md: 2,374 MiB resident with an app built here,
        # which FastAPI's endpoint cache keeps alive, 986 MiB with the index
        # only opened and let go).
        open_index(args)
        gc.collect()
        app = None
    else:
        app = open_app(args)
    print(f'MVLT catalogue search of {args.index_dir}: http://{args.host}:'
          f'{args.port}/ ({args.workers} worker(s); Ctrl+C stops it)',
          flush=True)
    serve(app, args.host, args.port, args.workers, 'search_app:worker_app',
          osp.dirname(osp.abspath(__file__)),
          sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    main()
