"""The catalogue-search page (gradio) of :mod:`mvlt.apis.search_app`: its
HTML result cards, its CSS and the ``gr.Blocks`` with the text, image,
image-plus-words and "more like this" searches over a
:class:`mvlt.apis.CatalogueSearch`. gradio is an optional dependency
(requirements/optional.txt), imported only when a page is built.
"""
import html
import os
from typing import List, Optional

from .ann_files import describe_ann
from .catalogue_search import CatalogueSearch, SearchInputError, decode_image
from .product_groups import photos_html
from .ranking_choice import describe_ranking

CSS = """
.mvlt-results {display: flex; flex-wrap: wrap; gap: 12px;}
.mvlt-card {width: 168px; border: 1px solid #ddd; border-radius: 8px;
            padding: 8px; font-size: 13px; background: white;}
.mvlt-card img {width: 150px; height: 150px; object-fit: contain;}
.mvlt-caption {font-weight: 600; margin: 4px 0;}
.mvlt-meta {color: #666;}
.mvlt-error {color: #b00020; font-weight: 600;}
.mvlt-warning {color: #8a5300; font-weight: 600;}
.mvlt-timing {color: #666; font-size: 12px; margin: 6px 0;}
"""


def _quiet_gradio():
    """Import gradio with telemetry off (the page must work offline)."""
    os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    try:
        import gradio
    except ImportError:
        raise SystemExit('The search page needs gradio: pip install -r '
                         'requirements/optional.txt') from None
    return gradio


def _error(message: str) -> str:
    return f'<p class="mvlt-error">{html.escape(message)}</p>'


def _timing(timing: dict) -> str:
    return (f'<div class="mvlt-timing">ITC {timing.get("itc", 0):.0f} ms'
            f' &middot; ITM re-rank {timing.get("itm", 0):.0f} ms &middot; '
            f'total {timing.get("total", 0):.0f} ms</div>')


def products_html(results: List[dict]) -> str:
    """Result cards: thumbnail, caption, category, score, "more like this".
    """
    if not results:
        return '<p>No products.</p>'
    cards = []
    for hit in results:
        caption = html.escape(hit['caption'])
        cards.append(
            f'<div class="mvlt-card" data-row="{hit["row"]}" '
            f'data-product="{html.escape(hit["product_id"])}">'
            f'<img src="/{hit["thumbnail"]}" alt="{caption}">'
            f'<div class="mvlt-caption">{caption}</div>'
            f'<div class="mvlt-meta">{html.escape(hit["category"])} &middot; '
            f'#{html.escape(hit["product_id"])}</div>'
            f'<div class="mvlt-meta">{hit["by"].upper()} '
            f'{hit["score"]:.3f}</div>'
            f'{photos_html(hit)}'
            f'<a class="mvlt-like" href="?like={hit["row"]}">More like '
            'this</a></div>')
    return '<div class="mvlt-results">' + ''.join(cards) + '</div>'


def text_results_html(out: dict) -> str:
    """A text search's answer: its warning (an all-[UNK] query), timing and
    result cards."""
    warning = out.get('warning')
    return (f'<p class="mvlt-warning">{html.escape(warning)}</p>' if warning
            else '') + _timing(out['timing']) + products_html(out['results'])


def captions_html(captions: List[dict]) -> str:
    """Ranked captions with the products that carry them."""
    items = ''.join(
        f'<li class="mvlt-caption-hit">{html.escape(c["caption"])} '
        f'<span class="mvlt-meta">({c["by"].upper()} {c["score"]:.3f}; '
        f'{html.escape(", ".join("#" + p for p in c["product_ids"]))})'
        '</span></li>' for c in captions)
    return f'<ol>{items}</ol>'


def _read_upload(path: str, max_bytes: int) -> bytes:
    if os.path.getsize(path) > max_bytes:
        raise SearchInputError(
            f'The upload has {os.path.getsize(path) / 2**20:.1f} MiB; at '
            f'most {max_bytes / 2**20:.1f} MiB are accepted.')
    with open(path, 'rb') as f:
        return f.read()


def build_page(search: CatalogueSearch, topk: int, rerank_k: int,
               max_bytes: int, max_pixels: int):
    """The gradio page (a ``gr.Blocks``)."""
    gr = _quiet_gradio()

    def text_page(query: str, k: float, k_rerank: float, one: bool) -> str:
        try:
            out = search.search_text(query, int(k), int(k_rerank), bool(one))
        except SearchInputError as err:
            return _error(str(err))
        return text_results_html(out)

    def image_page(path: Optional[str], k: float, k_rerank: float) -> str:
        if not path:
            return ''
        try:
            image = decode_image(
                _read_upload(path, max_bytes), max_bytes, max_pixels)
            out = search.search_image(image, int(k), int(k_rerank))
        except SearchInputError as err:
            return _error(str(err))
        products = products_html(out['products']) if out['products'] else \
            '<p>Similar products need an ITC index.</p>'
        return (_timing(out['timing']) + '<h3>Best-matching captions</h3>' +
                captions_html(out['captions']) +
                '<h3>Most similar products</h3>' + products)

    def composed_page(path: Optional[str], text: str, k: float) -> str:
        if not path:
            return _error('Upload a photo of the product to start from.')
        try:
            image = decode_image(
                _read_upload(path, max_bytes), max_bytes, max_pixels)
            out = search.search_composed(image, text, int(k))
        except SearchInputError as err:
            return _error(str(err))
        return text_results_html(out)

    def like_page(request: gr.Request) -> str:
        row = request.query_params.get('like') if request else None
        if row is None:
            return ''
        try:
            if not row.isdigit():
                raise SearchInputError(f'No product row {row!r}.')
            out = search.more_like(int(row), topk)
        except SearchInputError as err:
            return _error(str(err))
        source = out['source']
        return (f'<h3>More like #{html.escape(source["product_id"])}: '
                f'{html.escape(source["caption"])}</h3>' +
                products_html(out['results']))

    index = search.index
    with gr.Blocks(
            title='MVLT catalogue search', analytics_enabled=False) as page:
        gr.Markdown(f'## MVLT catalogue search\n{index.items.num_live} '
                    f'images of {index.items.num_products} products '
                    f'({index.meta["gallery"]["kind"]} gallery, '
                    f'{"ITC + ITM" if index.has_itc else "exact ITM"}). '
                    + describe_ann(index.meta) + describe_ranking(index.meta))
        like = gr.HTML(elem_id='like-results')
        with gr.Tab('Search by words'):
            with gr.Row():
                query = gr.Textbox(
                    label='Describe the product',
                    placeholder='long purple checked trousers',
                    elem_id='query',
                    scale=4)
                button = gr.Button(
                    'Search', variant='primary', elem_id='search', scale=1)
            with gr.Row():
                k = gr.Slider(1, 50, topk, step=1, label='k: results (ITC)')
                k_rerank = gr.Slider(
                    0, 64, rerank_k, step=1, label="k': re-ranked by ITM")
                per_product = gr.Checkbox(
                    True, label='One card per product', elem_id='by-product')
            text_results = gr.HTML(elem_id='text-results')
        with gr.Tab('Search by image'):
            upload = gr.File(
                label=f'Product photo (at most {max_bytes / 2**20:.0f} MiB)',
                type='filepath',
                elem_id='upload')
            image_results = gr.HTML(elem_id='image-results')
        with gr.Tab('Search by image and words'):
            with gr.Row():
                composed_upload = gr.File(
                    label='Start from this product',
                    type='filepath',
                    elem_id='composed-upload')
                change = gr.Textbox(
                    label='What to change',
                    placeholder='is red and has short sleeves',
                    elem_id='change')
            composed_button = gr.Button(
                'Search', variant='primary', elem_id='composed-search')
            composed_results = gr.HTML(elem_id='composed-results')
        for event in (button.click, query.submit):
            event(text_page, [query, k, k_rerank, per_product], text_results)
        upload.upload(image_page, [upload, k, k_rerank], image_results)
        for event in (composed_button.click, change.submit):
            event(composed_page, [composed_upload, change, k],
                  composed_results)
        page.load(like_page, None, like)
    return page
