"""The catalogue-search web application: JSON endpoints, the index's
thumbnails and the gradio page (:mod:`mvlt.apis.search_page`) in one
FastAPI app, private by default (:mod:`mvlt.apis.web_guard`).

``tools/demo/search_app.py`` is its command line (and the worker factory of
:mod:`mvlt.apis.serving`); gradio and FastAPI are optional dependencies
(requirements/optional.txt), imported when an app is built.
"""
import os.path as osp
import re
from typing import Optional, Sequence

from .ann_files import IndexFileError, ann_summary
from .catalogue_search import (MAX_IMAGE_PIXELS, CatalogueSearch,
                               SearchInputError, decode_image, parse_group)
from .ranking_choice import default_rerank_k
from .search_metrics import add_metrics
from .search_page import CSS, _quiet_gradio, build_page
from .web_guard import allowed_hosts, guard_hosts

#: The file names of the index's thumbnails (their row number).
THUMB_NAME = re.compile(r'^(\d{6,10})\.jpg$')
#: Any of gradio's routes that serve a file by path.
FILE_ROUTE = re.compile(r'/file[=/](.*)$')


def build_app(search: CatalogueSearch,
              host: str = '127.0.0.1',
              port: int = 7860,
              topk: int = 10,
              rerank_k: Optional[int] = None,
              max_upload_mb: float = 10.0,
              max_pixels: int = MAX_IMAGE_PIXELS,
              extra_hosts: Sequence[str] = ()):
    """The FastAPI app: JSON endpoints, thumbnails and the page at ``/``.

    Uploads go to ``$GRADIO_TEMP_DIR`` (tools/demo/search_app.py makes a
    private one); gradio's file routes serve nothing outside it. Only
    requests to the loopback names, ``host`` and ``extra_hosts``, from those
    origins, are answered (:mod:`mvlt.apis.web_guard`).
    """
    gr = _quiet_gradio()
    from fastapi import FastAPI, Request

    # None: what the index build measured best (docs/search_at_scale.md).
    rerank_k = default_rerank_k(search.index.meta, 16, rerank_k)
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response
    from gradio.utils import get_upload_folder

    max_bytes = int(max_upload_mb * 2**20)
    uploads = osp.realpath(get_upload_folder())
    app = FastAPI(title='MVLT catalogue search', docs_url=None, redoc_url=None)
    guard_hosts(app, allowed_hosts(host, extra_hosts))

    def refused(status: int, message: str) -> JSONResponse:
        return JSONResponse({'error': message}, status_code=status)

    add_metrics(app)

    @app.middleware('http')
    async def only_own_files(request: Request, call_next):
        match = FILE_ROUTE.search(request.url.path)
        if match:
            target = osp.realpath(match.group(1))
            if osp.commonpath([target, uploads]) != uploads:
                return refused(
                    403, 'This page serves only its index\'s thumbnails '
                    'and this session\'s uploads, not ' + match.group(1))
        return await call_next(request)

    @app.get('/thumbs/{name}')
    def thumbnail(name: str):
        # From the index's thumbnail packs (mvlt/apis/item_store.py).
        match = THUMB_NAME.match(name)
        try:
            data = search.index.items.thumbnail(int(match.group(1))) \
                if match else None
        except IndexFileError as err:  # a damaged pack: say which
            return refused(500, str(err))
        if data is None:
            return refused(404, f'No thumbnail {name!r} in this index.')
        return Response(data, media_type='image/jpeg')

    @app.get('/api/info')
    def info():
        meta = search.index.meta
        return dict(
            num_items=search.index.items.num_live,
            mode=meta['mode'],
            backend=search.index.backend,
            gallery=meta['gallery']['path'],
            checkpoint=meta['checkpoint']['path'],
            max_query_chars=search.max_query_chars,
            max_upload_bytes=max_bytes,
            max_pixels=max_pixels,
            ann=ann_summary(meta),
            ranking=meta.get('ranking'),
            default_rerank_k=rerank_k)

    @app.get('/api/search')
    def api_search(q: str = '',
                   k: int = topk,
                   rerank: int = rerank_k,
                   group: str = 'product'):
        try:
            return search.search_text(q, k, rerank, parse_group(group))
        except SearchInputError as err:
            return refused(400, str(err))

    @app.get('/api/similar')
    def api_similar(row: int, k: int = topk, group: str = 'product'):
        try:
            return search.more_like(row, k, parse_group(group))
        except SearchInputError as err:
            return refused(400, str(err))

    async def image_query(request: Request, query):
        """Read the body (refused past ``max_bytes`` while it streams),
        decode it and answer ``query(image)`` in a worker thread."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                return refused(
                    413, f'The upload is over {max_bytes / 2**20:.1f} MiB, '
                    'the limit.')

        def run():
            return query(decode_image(bytes(body), max_bytes, max_pixels))

        try:
            return await run_in_threadpool(run)
        except SearchInputError as err:
            return refused(400, str(err))

    @app.post('/api/image')
    async def api_image(request: Request,
                        k: int = topk,
                        rerank: int = rerank_k,
                        group: str = 'product'):
        return await image_query(
            request, lambda image: search.search_image(image, k, rerank,
                                                       parse_group(group)))

    @app.post('/api/composed')
    async def api_composed(request: Request, q: str = '', k: int = topk):
        return await image_query(
            request, lambda image: search.search_composed(image, q, k))

    page = build_page(search, topk, rerank_k, max_bytes, max_pixels)
    return gr.mount_gradio_app(
        app,
        page,
        path='/',
        server_name=host,
        server_port=port,
        footer_links=[],
        run_history=False,
        max_file_size=max_bytes,
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        pwa=False,
        css=CSS)
