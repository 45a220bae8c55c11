"""mvlt.datasets stands below mvlt.models: a loader worker imports neither
the model code nor timm."""
import json
import subprocess
import sys

from conftest import REPO

SCRIPT = '''
import json, sys
import mvlt.datasets  # noqa: F401
print(json.dumps(sorted(
    m for m in sys.modules
    if m == 'timm' or m.startswith(('timm.', 'mvlt.models')))))
'''


def test_importing_the_datasets_imports_no_model_code():
    result = subprocess.run([sys.executable, '-c', SCRIPT],
                            cwd=REPO,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == []
