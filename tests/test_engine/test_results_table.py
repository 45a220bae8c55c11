"""The paper-like results table of tools/test.py."""
from mvlt.engine.hooks.results_hook import format_table, split_metric_name


def test_metric_names_become_rows_and_columns():
    assert split_metric_name('retrieval/fashiongen-101/validation/TIR/R@1') \
        == ('TIR (fashiongen-101, validation)', 'R@1')
    assert split_metric_name('recognition/test/M-CR/macro-F') == \
        ('M-CR (test)', 'macro-F')
    assert split_metric_name('mig/psnr_whole') == ('MIG', 'psnr_whole')


def test_table_layout():
    table = format_table({
        'retrieval/p/test/TIR/R@1': 34.6,
        'retrieval/p/test/TIR/SumR': 167.5,
        'retrieval/p/test/ITR/R@1': 33.1,
        'recognition/test/M-CR/macro-F': 0.896,
    }).splitlines()
    assert table == [
        '| task          | R@1   | SumR   | macro-F |',
        '|---------------|-------|--------|---------|',
        '| TIR (p, test) | 34.60 | 167.50 |         |',
        '| ITR (p, test) | 33.10 |        |         |',
        '| M-CR (test)   |       |        | 0.8960  |',
    ]
