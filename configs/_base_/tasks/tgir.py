# Text-guided image retrieval (TGIR, FashionIQ's protocol): per category
# R@10 / R@50 of the target among that category's validation images (the
# reference removed from its candidates, ties against the target) and their
# mean, for the composed query (TGIR head on the joint pass of the reference
# image and the modification text) and the two baselines from the same
# checkpoint: the text alone (ITC text tower) and the reference image alone
# (ITC image tower). docs/tgir.md states the protocol.
test_cfg = dict(
    type='TGIRTestLoop', methods=('composed', 'text-only', 'image-only'))
test_evaluator = dict(type='FashionIQMetric', topk=(10, 50))
val_cfg = val_evaluator = None
# The head a leaf adds beside the ITC head whose image tower embeds the
# gallery (embed_dim must be the ITC head's):
#   model = dict(heads=dict(_delete_=True, itc=_base_.itc_head,
#       tgir=dict(_base_.tgir_head, embed_dim=_base_.itc_head.embed_dim)),
#       train_objectives=('tgir', ), predict_tasks=('tgir', ))
tgir_head = dict(type='TGIRHead', in_channels=None, pooling='cls+visual')
