# MS-COCO 5K retrieval (Karpathy test split, the ViLT protocol): every test
# caption against all 5,000 images (TIR) and every image against all ~25,000
# captions (ITR), ranked by ITM score; R@1 / R@5 / R@10.
#   tools/dist_test.sh configs/mvlt/coco_retrieval_test.py CKPT 8
# mode='exact' scores all 125 million pairs (ViLT users report hours on 8
# GPUs). mode='rerank' (BLIP-style) ranks by ITC similarity first and
# re-scores only the top rerank_k candidates of each query with ITM; with
# rerank_k >= the gallery size it gives exactly the exact-mode numbers.
# 'auto' (default) re-ranks when the checkpoint has an ITC head:
#   --cfg-options test_cfg.mode=exact
_base_ = [
    './coco_retrieval_finetune.py',
    '../_base_/tasks/retrieval_fullgallery.py',
]

retrieval_mode = 'auto'  # 'exact', or 'rerank' (needs the ITC head)
test_cfg = dict(
    protocol_name='coco-5k',
    split='test',
    mode=retrieval_mode,
    pair_batch_size=512)
