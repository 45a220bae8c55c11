# Fashion-Gen retrieval against the whole test gallery (the second protocol
# FashionViL reports beside the 101-candidate one): every caption of the
# validation file against every image, every image against every product
# caption, by ITM score. Exact mode scores all pairs (images sharded across
# processes: tools/dist_test.sh CONFIG CKPT 8). mode='rerank' ranks by the
# ITC embeddings first and re-scores only the top rerank_k per query with
# ITM; it needs a model trained with the ITC head (model.heads.itc).
#   python tools/test.py configs/mvlt/retrieval_fashiongen_fullgallery.py \
#       CKPT [--cfg-options test_cfg.mode=rerank test_cfg.num_queries=1000]
_base_ = ['./retrieval_fashiongen_zeroshot.py']

test_cfg = dict(
    _delete_=True,
    type='RetrievalTestLoop',
    protocol='full_gallery',
    protocol_name='fashiongen-full',
    split='validation',
    num_queries=None,
    mode='exact',
    rerank_k=128,
    pair_batch_size=256)
test_evaluator = dict(protocol='fashiongen-full')
