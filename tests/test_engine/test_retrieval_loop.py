"""The retrieval test loop: candidate and full-gallery protocols, exact and
re-ranked, distributed, and its errors; the per-sample test loop."""
import copy
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from retrieval_test_utils import (NANO_ITC, nano_retrieval_config, run_test,
                                  save_model_checkpoint, synthetic_options)

from conftest import REPO, cfg_options_args, finish_tool, start_tool
from mvlt.datasets.retrieval_protocol import (build_candidate_protocol,
                                              build_gallery_protocol,
                                              dataset_rows, save_protocol)
from mvlt.engine.loops import RetrievalScorer
from mvlt.engine.loops.test_loop import pad_batch
from mvlt.evaluation import positive_ranks
from mvlt.registry import DATASETS, MODELS
from mvlt.text import build_vocab
from mvlt.utils import register_all_modules

register_all_modules()


@pytest.fixture(scope='module')
def nano_setup(nano_config, tmp_path_factory):
    """A nano checkpoint with ITM + ITC heads and a 6-candidate protocol."""
    root = tmp_path_factory.mktemp('retrieval_loop')
    model_cfg = copy.deepcopy(nano_config.model)
    model_cfg.heads.itc = NANO_ITC
    checkpoint = save_model_checkpoint(model_cfg, str(root / 'nano.pth'))
    dataset = DATASETS.build(nano_config.test_dataloader.dataset)
    rows = dataset_rows(dataset)
    protocol = build_candidate_protocol(
        rows, num_queries=6, num_negatives=5, seed=0, name='nano-6')
    protocol_file = str(root / 'protocol.json')
    save_protocol(protocol, protocol_file)
    return dict(
        checkpoint=checkpoint,
        protocol_file=protocol_file,
        dataset=dataset,
        rows=rows,
        model_cfg=model_cfg)


@pytest.fixture
def nano_test(nano_config, nano_setup, tmp_path):
    """``nano_test(name, **test_cfg)``: the retrieval test config of the
    nano ITM + ITC checkpoint (``checkpoint=`` another), work dir
    ``tmp_path / name``."""

    def config(name: str = '', checkpoint: str = None, **test_cfg) -> Config:
        checkpoint = checkpoint or nano_setup['checkpoint']
        return nano_retrieval_config(nano_config, checkpoint,
                                     str(tmp_path / name), **test_cfg)

    return config


def _ranking(records):
    """What a ranked query record says, as plain lists."""
    keys = ('direction', 'query_row', 'rank', 'topk_rows', 'topk_scores')
    return [tuple(np.asarray(r[k]).tolist() for k in keys) for r in records]


@pytest.mark.slow
def test_candidates_exact_equals_rerank_of_all(nano_setup, nano_test):
    common = dict(
        protocol='candidates', protocol_file=nano_setup['protocol_file'])
    exact, exact_records = run_test(nano_test('a', mode='exact', **common))
    rerank, rerank_records = run_test(
        nano_test('b', mode='rerank', rerank_k=6, **common))
    assert exact == rerank
    assert _ranking(exact_records) == _ranking(rerank_records)
    assert set(exact) == {
        f'retrieval/nano-6/test/{task}/{m}'
        for task in ('TIR', 'ITR')
        for m in ('R@1', 'R@5', 'R@10', 'SumR')
    }
    # 6 queries per direction, 6 candidates each.
    assert len(exact_records) == 12
    assert all(1 <= r['rank'] <= 6 for r in exact_records)

    # Re-ranking the ITC top-2: a positive outside them ranks after both.
    _, top2 = run_test(nano_test('c', mode='rerank', rerank_k=2, **common))
    for record in top2:
        if record['rank'] <= 2:
            assert any(record['topk_positive'][:2])
        else:
            assert not any(record['topk_positive'][:2])


@pytest.mark.slow
def test_full_gallery_matches_brute_force(nano_setup, nano_test):
    metrics, records = run_test(
        nano_test('exact', protocol='full_gallery', mode='exact'))
    # Brute force: every caption x image pair scored, then ranked.
    rows = nano_setup['rows']
    gallery = build_gallery_protocol(rows)
    model = MODELS.build(copy.deepcopy(nano_setup['model_cfg']))
    state = torch.load(nano_setup['checkpoint'])['state_dict']
    model.load_state_dict(state)
    model.eval()
    scorer = RetrievalScorer(
        model, nano_setup['dataset'], rows.caption, pair_batch_size=16)
    with torch.no_grad():
        columns = scorer.score_groups([(int(i), gallery.caption_rows)
                                       for i in gallery.image_rows])
    scores = np.stack(columns, axis=1)  # captions x images
    product = rows.product_index
    positives = product[gallery.caption_rows][:, None] == \
        product[gallery.image_rows][None]
    expected = dict(
        text_to_image=positive_ranks(scores, positives).tolist(),
        image_to_text=positive_ranks(scores.T, positives.T).tolist())
    got = {
        d: [r['rank'] for r in records if r['direction'] == d]
        for d in expected
    }
    assert got == expected
    assert metrics['retrieval/full-gallery/test/TIR/R@10'] == pytest.approx(
        100 * np.mean(np.asarray(expected['text_to_image']) <= 10))

    # Re-ranking every candidate is the exact mode, number for number.
    rerank, rerank_records = run_test(
        nano_test(
            'rerank', protocol='full_gallery', mode='rerank', rerank_k=1000))
    assert rerank == metrics
    assert _ranking(rerank_records) == _ranking(records)


@pytest.mark.slow
@pytest.mark.parametrize('protocol', ['candidates', 'full_gallery'])
def test_itc_mode_ranks_by_itc_similarity(nano_setup, nano_test, protocol):
    """mode='itc' ranks by ITC alone: the same ranks as re-ranking only
    the ITC top-1 (which stays first whatever its ITM score), with cosine
    similarities as scores."""
    common = dict(protocol=protocol)
    if protocol == 'candidates':
        common['protocol_file'] = nano_setup['protocol_file']
    itc, itc_records = run_test(nano_test('itc', mode='itc', **common))
    top1, top1_records = run_test(
        nano_test('top1', mode='rerank', rerank_k=1, **common))
    assert itc == top1
    assert [(r['query_row'], r['rank']) for r in itc_records] == \
        [(r['query_row'], r['rank']) for r in top1_records]
    for record in itc_records:
        scores = np.asarray(record['topk_scores'])
        assert np.all(np.abs(scores) <= 1.0 + 1e-5)
        assert np.all(np.diff(scores) <= 0)


@pytest.mark.slow
def test_loop_and_inferencer_rank_alike(nano_setup, nano_test):
    """The loop and MVLTInferencer share pair scoring and ITC -> ITM
    re-ranking (the model's scoring API and mvlt.models.utils.rerank): on
    the same gallery they rank every caption query identically."""
    from mvlt.apis import MVLTInferencer
    k, batch = 3, 8
    cfg = nano_test(
        protocol='full_gallery',
        mode='rerank',
        rerank_k=k,
        directions=('text_to_image', ),
        pair_batch_size=batch,
        embed_batch_size=batch)
    _, records = run_test(cfg)
    rows = nano_setup['rows']
    gallery = build_gallery_protocol(rows).image_rows
    paths = [
        nano_setup['dataset'].get_data_info(int(r))['img_path']
        for r in gallery
    ]
    inferencer = MVLTInferencer(
        cfg, nano_setup['checkpoint'], batch_size=batch)
    for record in records:
        hits = inferencer.rank_images(
            rows.caption[record['query_row']], paths, topk=5, rerank_k=k)
        assert [int(gallery[h['index']]) for h in hits] == \
            record['topk_rows'], record['query_row']
        np.testing.assert_allclose([h['score'] for h in hits],
                                   record['topk_scores'],
                                   rtol=0,
                                   atol=1e-6)
        assert [h['by'] for h in hits] == ['itm'] * k + ['itc'] * (5 - k)


@pytest.mark.slow
def test_protocol_of_another_split_is_refused(nano_setup, nano_test, tmp_path):
    rows = copy.deepcopy(nano_setup['rows'])
    rows.caption[0] = 'a caption the test split does not have'
    other = str(tmp_path / 'other.json')
    save_protocol(
        build_candidate_protocol(rows, num_queries=4, num_negatives=5), other)
    cfg = nano_test(protocol='candidates', protocol_file=other)
    with pytest.raises(ValueError, match='made for another data set'):
        run_test(cfg)
    cfg.test_cfg.protocol_file = str(tmp_path / 'missing.json')
    with pytest.raises(FileNotFoundError, match='make_retrieval_protocol'):
        run_test(cfg)


@pytest.mark.slow
def test_checkpoint_without_needed_heads_is_refused(nano_config, nano_test,
                                                    tmp_path):
    # The plain nano model has no ITC head: re-ranking needs one.
    checkpoint = save_model_checkpoint(nano_config.model,
                                       str(tmp_path / 'no_itc.pth'))
    for mode in ('rerank', 'itc'):
        cfg = nano_test(
            mode, checkpoint=checkpoint, protocol='full_gallery', mode=mode)
        with pytest.raises(KeyError, match=r"\['itc'\]"):
            run_test(cfg)


@pytest.mark.slow
def test_test_config_without_evaluator_is_refused(nano_test):
    cfg = nano_test(protocol='full_gallery')
    cfg.test_evaluator = []
    with pytest.raises(ValueError, match='no evaluator'):
        run_test(cfg)


@pytest.mark.slow
def test_bad_loop_settings_are_named(nano_test):
    for settings, message in ((dict(protocol='candidates'), 'protocol_file'),
                              (dict(protocol='nearest'), 'protocol must be'),
                              (dict(protocol='full_gallery',
                                    mode='fast'), 'mode must be')):
        cfg = nano_test(**settings)
        with pytest.raises(ValueError, match=message):
            run_test(cfg)


def test_pad_batch_repeats_copies_of_the_first_sample(nano_config):
    dataset = DATASETS.build(nano_config.test_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    padded = pad_batch(batch, 4)
    assert len(padded['data_samples']) == 4
    assert len(padded['inputs']['images']) == 4
    assert padded['data_samples'][2] is not batch['data_samples'][0]
    assert torch.equal(padded['inputs']['images'][3],
                       batch['inputs']['images'][0])


@pytest.mark.slow
def test_coco_protocol_exact_and_rerank(synthetic_coco, nano_config, tmp_path):
    """COCO 5K-style full gallery on a generated COCO layout (several
    captions per image)."""
    captions = [
        c for split in synthetic_coco['images'].values() for image in split
        for c in image['captions']
    ]
    vocab = build_vocab(captions, str(tmp_path / 'vocab'), vocab_size=300)
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/mvlt/coco_retrieval_test.py'))
    model = copy.deepcopy(nano_config.model)
    model.heads.itc = NANO_ITC
    model.heads.mir = None
    model.data_preprocessor.tokenizer = dict(vocab_file=vocab)
    model.predict_tasks = ('itm', )
    cfg.model = model
    pipeline = [
        dict(type='LoadImage'),
        dict(type='Resize', scale=(64, 64), keep_ratio=False),
        dict(type='Tokenize', tokenizer=dict(vocab_file=vocab), max_length=32),
        dict(type='PackMVLTInputs'),
    ]
    cfg.test_dataloader.update(
        num_workers=0, persistent_workers=False, batch_size=4)
    cfg.test_dataloader.dataset.update(
        data_root=synthetic_coco['root'], pipeline=pipeline)
    checkpoint = save_model_checkpoint(model, str(tmp_path / 'coco.pth'))
    cfg.load_from = checkpoint
    cfg.test_cfg.update(
        pair_batch_size=16, embed_batch_size=8, show_progress=False)
    results = {}
    for mode, k in (('exact', 128), ('rerank', 10000), ('rerank', 3)):
        cfg.test_cfg.update(mode=mode, rerank_k=k)
        cfg.work_dir = str(tmp_path / f'{mode}{k}')
        results[(mode, k)] = run_test(copy.deepcopy(cfg))
    exact, exact_records = results[('exact', 128)]
    assert set(exact) >= {
        'retrieval/coco-5k/test/TIR/R@1', 'retrieval/coco-5k/test/ITR/R@10'
    }
    # 4 test images with 5 or 6 captions: every caption is a query.
    num_captions = sum(
        len(i['captions']) for i in synthetic_coco['images']['test'])
    directions = [r['direction'] for r in exact_records]
    assert directions.count('text_to_image') == num_captions
    assert directions.count('image_to_text') == 4
    assert results[('rerank', 10000)][0] == exact
    assert [r['rank'] for r in results[('rerank', 10000)][1]] == \
        [r['rank'] for r in exact_records]
    # Top-3 re-ranking still ranks every query.
    assert len(results[('rerank', 3)][1]) == len(exact_records)


def _metrics(work_dir):
    with open(osp.join(work_dir, 'test_metrics.json')) as f:
        return json.load(f)['metrics']


def _in_process(config, checkpoint, work_dir, options, train=False):
    """Run a config with the runner the tools build, in this process: test
    (metrics) or train."""
    from mvlt.engine import build_runner
    from mvlt.utils.config import prepare_test_config
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    if train:
        build_runner(cfg).train()
        return None
    prepare_test_config(cfg, config)
    return build_runner(cfg).test()


@pytest.mark.slow
def test_synthetic_fashiongen_end_to_end(synthetic_fashiongen, tmp_path):
    """The synthetic Fashion-Gen: TIR / ITR (101-candidate protocol, here 6
    candidates), full gallery, MIG, and recognition after a short
    fine-tuning. tools/test.py prints the tables; the numbers are the same
    when run twice and with 2 processes (tools/dist_test.sh)."""
    data = synthetic_fashiongen
    cfg_dir = osp.join(REPO, 'configs', 'mvlt', 'synthetic')
    zeroshot = osp.join(cfg_dir, 'retrieval_synthetic_zeroshot.py')
    cfg = Config.fromfile(zeroshot)
    cfg.merge_from_dict(synthetic_options(data))
    checkpoint = save_model_checkpoint(cfg.model, str(tmp_path / 'demo.pth'))
    protocol = str(tmp_path / 'synthetic-101_validation.json')
    # Tools run one thread each, at the same time as what the test does in
    # this process where they are independent of it (two cores).
    one_thread = dict(os.environ, OMP_NUM_THREADS='1')
    making_protocol = start_tool([
        sys.executable, 'tools/misc/make_retrieval_protocol.py', zeroshot,
        '--out', protocol, '--num-negatives', '5', '--name', 'synthetic-101',
        '--split', 'validation'
    ] + cfg_options_args(synthetic_options(data)), one_thread)

    def options(config, **extra):
        needs_protocol = config.startswith('retrieval_synthetic_zeroshot')
        return dict(
            synthetic_options(data, protocol if needs_protocol else None),
            **extra)

    def start(config, checkpoint, name, procs=1, port=29650):
        """tools/test.py (procs=1) or tools/dist_test.sh, started."""
        work_dir = str(tmp_path / name)
        args = [osp.join(cfg_dir, config), checkpoint]
        tail = ['--work-dir', work_dir] + cfg_options_args(options(config))
        if procs == 1:
            command = [sys.executable, 'tools/test.py'] + args + tail
            env = one_thread
        else:
            command = ['bash', 'tools/dist_test.sh', *args, str(procs), *tail]
            env = dict(one_thread, PYTHON=sys.executable, PORT=str(port))
        return start_tool(command, env), work_dir

    def finish(started):
        """The metrics and printed output of a ``start``-ed run."""
        process, work_dir = started
        output = finish_tool(process).stdout
        return _metrics(work_dir), output

    def here(config, checkpoint, name):
        return _in_process(
            osp.join(cfg_dir, config), checkpoint, str(tmp_path / name),
            options(config))

    single = {
        config: here(config, checkpoint, config + '1')
        for config in ('retrieval_synthetic_fullgallery.py',
                       'mig_synthetic.py')
    }
    finish_tool(making_protocol)
    started = start('retrieval_synthetic_zeroshot.py', checkpoint,
                    'zeroshot_cli')
    again = here('retrieval_synthetic_zeroshot.py', checkpoint,
                 'zeroshot_again')
    first, output = finish(started)
    assert '| TIR (synthetic-101, validation)' in output
    assert '| ITR (synthetic-101, validation)' in output
    assert again == first
    single['retrieval_synthetic_zeroshot.py'] = first
    for config, port in (('retrieval_synthetic_zeroshot.py', 29651),
                         ('retrieval_synthetic_fullgallery.py',
                          29652), ('mig_synthetic.py', 29653)):
        two, _ = finish(
            start(config, checkpoint, config + '2', procs=2, port=port))
        assert single[config] == two, config
    assert set(two) == {
        'mig/psnr_masked', 'mig/psnr_whole', 'mig/ssim_masked',
        'mig/ssim_whole'
    }

    # Recognition: a one-epoch fine-tuning from the demo checkpoint.
    finetune_dir = str(tmp_path / 'finetune')
    _in_process(
        osp.join(cfg_dir, 'recognition_synthetic_finetune.py'),
        checkpoint,
        finetune_dir,
        dict(
            synthetic_options(data, train=True), **{'train_cfg.max_epochs':
                                                    1}),
        train=True)
    finetuned = osp.join(finetune_dir, 'epoch_1.pth')
    runs = [
        start('recognition_synthetic_finetune.py', finetuned, 'recog1'),
        start(
            'recognition_synthetic_finetune.py',
            finetuned,
            'recog2',
            procs=2,
            port=29654)
    ]
    # The pre-trained checkpoint has no category head: a clear error.
    with pytest.raises(
            KeyError, match=r"no weights for the head\(s\) "
            r"\['category'\]"):
        here('recognition_synthetic_finetune.py', checkpoint, 'bad')
    (one, output), (two, _) = map(finish, runs)
    assert one == two
    assert '| M-CR (validation)' in output and '| S-CR (validation)' in output
    for task in ('M-CR', 'S-CR'):
        assert 0 <= one[f'recognition/validation/{task}/A'] <= 100
        assert one[f'recognition/validation/{task}/SumC'] == pytest.approx(
            one[f'recognition/validation/{task}/A'] +
            100 * one[f'recognition/validation/{task}/macro-F'])
