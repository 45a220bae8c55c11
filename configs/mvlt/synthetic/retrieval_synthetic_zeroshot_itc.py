# The demo's zero-shot TIR / ITR (101 candidates, as
# retrieval_synthetic_zeroshot.py) ranked by ITC similarity alone, with the
# ITC head of the demo's checkpoint. Within the demo's 10 minutes ITC tells
# a garment's patterns apart on 8 of 10 runs and ITM on 2 (seeds 0-4, 1 and 2
# threads; docs/alignment.md); the ITM ranking of the paper is
# retrieval_synthetic_zeroshot.py, which tools/demo/run_demo.sh runs too.
_base_ = ['./retrieval_synthetic_zeroshot.py']

model = dict(heads=dict(itc={{_base_.itc_head}}))
test_cfg = dict(mode='itc')
