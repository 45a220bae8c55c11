# Zero-shot category (M-CR) and sub-category (S-CR) recognition: no
# fine-tuning; each class is a prompt caption, an image's class scores the
# softmax of its ITC similarities to the prompts (ZeroShotCategoryHead, as
# CLIP / FashionCLIP), reported by RecognitionMetric as the fine-tuned
# category head's (accuracy, macro-F1, SumC). The checkpoint needs an ITC
# head. A leaf adds the class words in label-id order and its templates:
#   model = dict(heads=dict(itc=..., zero_shot=dict(
#       _base_.zero_shot_head, classes=dict(category=[...],
#       subcategory=[...]), templates=[...])))
test_cfg = dict(type='MVLTTestLoop', tasks=('zero_shot', ))
test_evaluator = dict(type='RecognitionMetric', split='validation')
zero_shot_head = dict(type='ZeroShotCategoryHead', itc='itc')
