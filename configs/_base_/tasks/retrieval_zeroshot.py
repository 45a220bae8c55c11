# Zero-shot text->image (TIR) and image->text (ITR) retrieval (paper table
# 2, docs/method.md section 4): each query ranked against 101 candidates (its
# positive and 100 negatives of the same sub-category) by the ITM matching
# probability; R@1 / R@5 / R@10 and SumR = R@5 + R@10 (in %). The candidate
# lists are drawn once per split (seeded; the file records the data set's
# content hash):
#   python tools/misc/make_retrieval_protocol.py CONFIG --num-queries 1000
# A leaf names its protocol_file.
test_cfg = dict(
    type='RetrievalTestLoop',
    protocol='candidates',
    protocol_name='fashiongen-101',
    split='validation',
    mode='exact',
    pair_batch_size=256)
test_evaluator = dict(type='RetrievalMetric')
