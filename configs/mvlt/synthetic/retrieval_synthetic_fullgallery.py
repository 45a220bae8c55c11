# Full-gallery TIR / ITR on the synthetic Fashion-Gen (every caption against
# every validation image and back), exact by default; test_cfg.mode='rerank'
# needs a model trained with the ITC head.
_base_ = ['./retrieval_synthetic_zeroshot.py']

test_cfg = dict(
    _delete_=True,
    type='RetrievalTestLoop',
    protocol='full_gallery',
    protocol_name='synthetic-full',
    split='validation',
    num_queries=None,
    mode='exact',
    rerank_k=32,
    pair_batch_size=256)
test_evaluator = dict(protocol='synthetic-full')
