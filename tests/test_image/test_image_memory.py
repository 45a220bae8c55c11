"""A 40,000 x 1,000 banner (118 KB as PNG) uploaded to the page: decoded and
prepared for the model within a memory cap, never padded to 40,000 x
40,000 (4.8 GB) on its way to 64 x 64."""
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

#: Address space the preparation may add to what the process holds after
#: its imports (the decoded banner is 120 MB; its square would be 4.8 GB).
HEADROOM = 1 << 30

SCRIPT = textwrap.dedent('''
    import resource, sys
    import torch
    from mvlt.apis.catalogue_search import decode_image
    from mvlt.models.data_preprocessors import MVLTDataPreprocessor

    banner, vocab, headroom = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kernels = {}
    for kernel in ('cv2', 'torch'):
        kernels[kernel] = MVLTDataPreprocessor(
            tokenizer=dict(vocab_file=vocab), img_size=64,
            foreground_crop=dict(threshold=240), resize_kernel=kernel,
            mask_generator=None)
    with open('/proc/self/status') as f:
        held = next(int(line.split()[1]) * 1024 for line in f
                    if line.startswith('VmSize'))
    resource.setrlimit(resource.RLIMIT_AS, (held + headroom, held + headroom))
    with open(banner, 'rb') as f:
        image = decode_image(f.read(), max_bytes=1 << 20,
                             max_pixels=40_000_000)
    chw = torch.from_numpy(image).permute(2, 0, 1)
    for kernel, preprocessor in kernels.items():
        out = preprocessor.prepare_images([chw])
        assert out.shape == (1, 3, 64, 64), out.shape
        # The band spans the width: the middle rows hold it, padding
        # (white) above and below.
        print(kernel, int(out[0, :, 0].float().mean()), int(out.min()))
''')


@pytest.mark.slow
def test_banner_upload_is_prepared_within_a_memory_cap(tmp_path, nano_data):
    banner = np.full((1000, 40_000, 3), 255, np.uint8)
    banner[100:900] = (40, 40, 160)  # a blue band across the whole width
    path = str(tmp_path / 'banner.png')
    assert cv2.imwrite(path, banner)
    done = subprocess.run([
        sys.executable, '-c', SCRIPT, path, nano_data['vocab'],
        str(HEADROOM)
    ],
                          capture_output=True,
                          text=True,
                          env=None)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(
        line.split(' ', 1) for line in done.stdout.split('\n') if line)
    for kernel in ('cv2', 'torch'):
        top, darkest = (int(v) for v in lines[kernel].split())
        assert top == 255 and darkest < 200, lines
