# Speed benchmark of the PVT-Tiny MVLT at the paper's settings: 256 px images,
# captions of L = 128 tokens, MIR + ITM + MLM, AdamW (fused). No data set and
# no vocabulary are needed: tools/analysis_tools/benchmark.py feeds synthetic
# inputs and builds a throw-away vocabulary of the configured size when the
# configured one is missing.
#   python tools/analysis_tools/benchmark.py \
#       configs/mvlt/benchmark/mvlt_pvt-tiny_256px.py --mode train
_base_ = [
    '../../_base_/models/mvlt_pvt-tiny.py',
    '../../_base_/schedules/adamw_cosine_150e.py',
]
default_scope = 'mvlt'
