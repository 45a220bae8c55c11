# Category (M-CR) and sub-category (S-CR) recognition (paper section 3.3):
# accuracy A, macro-F1 and SumC = (A + macro-F) x 100 of the category head,
# fine-tuned end to end (images and captions go in unmasked and matched).
val_cfg = dict(type='ValLoop')
val_evaluator = dict(type='RecognitionMetric', split='validation')
test_cfg = dict(type='MVLTTestLoop', tasks=('category', ))
test_evaluator = val_evaluator
# The head that replaces the pre-training heads, on the [CLS] of T^4 (width
# taken from the backbone); a leaf adds its data's class counts:
#   model = dict(heads=dict(_delete_=True, category=dict(
#       _base_.category_head, num_categories=48, num_subcategories=122)))
category_head = dict(type='CategoryHead', in_channels=None)
