"""mvlt.datasets stands below mvlt.models: a loader worker imports neither
the model code nor timm."""
import json

from conftest import run_python

SCRIPT = '''
import json, sys
import mvlt.datasets  # noqa: F401
print(json.dumps(sorted(
    m for m in sys.modules
    if m == 'timm' or m.startswith(('timm.', 'mvlt.models')))))
'''


def test_importing_the_datasets_imports_no_model_code():
    out = run_python(SCRIPT)
    loaded = json.loads(out.strip().splitlines()[-1])
    assert loaded == []
