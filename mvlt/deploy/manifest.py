"""The manifest of an ONNX export: what the graphs were made from and what
a server must do to their inputs (torch-free).

``tools/deployment/export_onnx.py`` writes ``manifest.json`` next to the
graphs; :func:`check_manifest` is run by every consumer
(:class:`mvlt.deploy.OnnxInferencer`, the search index) before a graph is
used, so that a graph is never served with a checkpoint or a vocabulary it
was not exported from.
"""
import json
import os.path as osp
from typing import Optional

from mvlt.apis.gallery import file_sha256

#: Version of the export folder's layout.
EXPORT_FORMAT = 1
MANIFEST_FILE = 'manifest.json'
VOCAB_FILE = 'vocab.txt'
#: The graphs of an export: name -> file.
GRAPH_FILES = dict(
    image='itc_image_tower.onnx',
    text='itc_text_tower.onnx',
    itm='itm_matcher.onnx')


class ManifestMismatchError(RuntimeError):
    """An exported graph does not belong to the checkpoint or vocabulary in
    use, or its files changed after the export."""


def read_manifest(export_dir: str) -> dict:
    """``manifest.json`` of ``export_dir``.

    Raises:
        FileNotFoundError: No manifest (not an export folder).
        ManifestMismatchError: A manifest of another format.
    """
    path = osp.join(export_dir, MANIFEST_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{export_dir} holds no {MANIFEST_FILE}: export the model with '
            'python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out '
            f'{export_dir}')
    with open(path, encoding='utf-8') as f:
        manifest = json.load(f)
    if manifest.get('format') != EXPORT_FORMAT:
        raise ManifestMismatchError(
            f'{path} has format {manifest.get("format")}; this mvlt reads '
            f'format {EXPORT_FORMAT}: export the model again.')
    return manifest


def check_manifest(export_dir: str,
                   manifest: dict,
                   checkpoint: Optional[str] = None,
                   checkpoint_sha256: Optional[str] = None,
                   vocab_file: Optional[str] = None) -> None:
    """Refuse an export that does not match what the caller serves.

    Args:
        export_dir: The export folder.
        manifest: Its manifest (:func:`read_manifest`).
        checkpoint: A checkpoint file in use: its SHA-256 must be the one
            the graphs were exported from.
        checkpoint_sha256: The same check against a recorded hash (a search
            index records its checkpoint's).
        vocab_file: A vocabulary in use: its SHA-256 must be the export's.

    Raises:
        ManifestMismatchError: A hash differs; the message names the files
            and says to export again.
    """
    recorded = manifest['checkpoint']
    again = (f'Export the checkpoint you serve: python tools/deployment/'
             f'export_onnx.py CONFIG CHECKPOINT --out {export_dir}')
    if checkpoint is not None:
        checkpoint_sha256 = file_sha256(checkpoint)
    if checkpoint_sha256 is not None and \
            checkpoint_sha256 != recorded['sha256']:
        raise ManifestMismatchError(
            f'Refusing the ONNX graphs of {export_dir}: they were exported '
            f'from checkpoint {recorded["path"]} (sha256 '
            f'{recorded["sha256"][:12]}...), but the checkpoint in use '
            f'{checkpoint or ""} has sha256 {checkpoint_sha256[:12]}.... ' +
            again)
    vocab = manifest['tokenizer']
    stored = osp.join(export_dir, vocab['vocab_file'])
    for path in filter(None, (stored, vocab_file)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'Vocabulary {path} does not exist. ' +
                                    again)
        digest = file_sha256(path)
        if digest != vocab['sha256']:
            raise ManifestMismatchError(
                f'Refusing the ONNX graphs of {export_dir}: vocabulary '
                f'{path} has sha256 {digest[:12]}..., the graphs were '
                f'exported with {vocab["source"]} (sha256 '
                f'{vocab["sha256"][:12]}...): token ids would not mean what '
                'the graphs learned. ' + again)
    for name, graph in manifest['graphs'].items():
        path = osp.join(export_dir, graph['file'])
        if not osp.isfile(path):
            raise FileNotFoundError(f'The {name} graph {path} is missing. ' +
                                    again)
        if file_sha256(path) != graph['sha256']:
            raise ManifestMismatchError(
                f'Refusing {path}: it changed after the export (its sha256 '
                f'is not the one in {MANIFEST_FILE}). ' + again)
