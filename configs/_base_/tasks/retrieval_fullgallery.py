# Retrieval against the whole test gallery: every caption against every
# image and every image against every distinct caption, by ITM score
# (FashionViL's second Fashion-Gen protocol; MS-COCO 5K as in ViLT). Exact
# mode scores all pairs (images shared out across processes:
# tools/dist_test.sh CONFIG CKPT 8); 'rerank' ranks by the ITC embeddings
# first and re-scores only the top rerank_k per query with ITM (BLIP-style;
# needs a model trained with the ITC head, model.heads.itc). 'auto' re-ranks
# when the checkpoint has an ITC head and scores exactly otherwise.
test_cfg = dict(
    type='RetrievalTestLoop',
    protocol='full_gallery',
    protocol_name='full-gallery',
    split='validation',
    num_queries=None,
    mode='auto',
    rerank_k=128,
    pair_batch_size=256)
test_evaluator = dict(type='RetrievalMetric')
