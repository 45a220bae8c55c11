# Masked image generation (MIG, paper section 3.3): the MIR decoder
# reconstructs test images masked with the pre-training strategy (each
# image's mask seeded by its index: every run and model sees the same
# masks); PSNR and SSIM on the masked pixels and on the whole image;
# --show-dir saves masked / reconstructed / original triplets.
test_cfg = dict(type='MVLTTestLoop', tasks=('mir', ))
test_evaluator = dict(type='ReconstructionMetric')
