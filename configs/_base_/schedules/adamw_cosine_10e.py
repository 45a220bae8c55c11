# Fine-tuning schedule: the optimiser of the pre-training recipe
# (adamw_cosine_150e.py) over 10 epochs, a 1-epoch linear warm-up then
# cosine decay (ViLT's fine-tuning length).
_base_ = ['./adamw_cosine_150e.py']

max_epochs = 10
param_scheduler = [
    dict(_base_.param_scheduler[0], end=1),
    dict(
        _base_.param_scheduler[1],
        T_max=max_epochs - 1,
        begin=1,
        end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs)
