"""tools/setup_env.sh takes a Python that torch 2.14.1 has wheels for, or
stops before pip with a message naming the versions that work."""
import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import REPO

#: What the script runs besides Python (bash builtins aside).
TOOLS = ('bash', 'cat', 'cut', 'dirname', 'sha1sum', 'tail', 'mkdir', 'chmod',
         'sh')

#: A stand-in interpreter: answers the version query, logs every call, and
#: for ``-m venv DIR`` makes DIR/bin/python, a stand-in of the same version.
FAKE_PYTHON = '''#!/bin/sh
echo "{name} $*" >> "{log}"
case "$1" in
-c) echo "{version}" ;;
-m)
    if [ "$2" = venv ]; then
        for last in "$@"; do :; done
        mkdir -p "$last/bin"
        cat "$0" > "$last/bin/python"
        chmod +x "$last/bin/python"
    fi
    ;;
esac
'''


@pytest.fixture
def sandbox(tmp_path):
    """A copy of the files the script reads, and a PATH of stand-ins."""
    repo = tmp_path / 'repo'
    (repo / 'tools').mkdir(parents=True)
    shutil.copy(os.path.join(REPO, 'tools', 'setup_env.sh'), repo / 'tools')
    shutil.copytree(os.path.join(REPO, 'requirements'), repo / 'requirements')
    for name in ('requirements.txt', 'setup.py'):
        shutil.copy(os.path.join(REPO, name), repo)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for tool in TOOLS:
        os.symlink(shutil.which(tool), bin_dir / tool)
    return dict(repo=repo, bin=bin_dir, log=tmp_path / 'calls.log')


def _interpreter(sandbox, name: str, version: str) -> str:
    path = sandbox['bin'] / name
    path.write_text(
        FAKE_PYTHON.format(name=name, version=version, log=sandbox['log']))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _run(sandbox, **env):
    """The script with only the sandbox's programs on PATH."""
    return subprocess.run(['bash', 'tools/setup_env.sh'],
                          cwd=sandbox['repo'],
                          env=dict(PATH=str(sandbox['bin']), **env),
                          capture_output=True,
                          text=True)


def _calls(sandbox) -> list:
    log = sandbox['log']
    return log.read_text().splitlines() if log.exists() else []


def test_python_3_9_stops_before_pip_naming_what_works(sandbox):
    old = _interpreter(sandbox, 'python3.9', '3.9')
    result = _run(sandbox, PYTHON=old)
    assert result.returncode == 1
    assert f'PYTHON={old} is Python 3.9; mvlt needs Python 3.10 to 3.14' \
        in result.stderr
    assert 'PYTHON=python3.12 bash tools/setup_env.sh' in result.stderr
    # Only the version was asked: no venv, no pip.
    assert all(' -c ' in call for call in _calls(sandbox))
    assert not (sandbox['repo'] / '.venv').exists()


def test_picks_a_supported_interpreter_among_several(sandbox):
    _interpreter(sandbox, 'python3', '3.9')
    _interpreter(sandbox, 'python3.13', '3.13')
    _interpreter(sandbox, 'python3.10', '3.10')
    result = _run(sandbox)
    assert result.returncode == 0, result.stderr
    assert 'making .venv with python3.13 (Python 3.13)' in result.stdout
    calls = _calls(sandbox)
    assert 'python3.13 -m venv .venv' in calls
    # The installs run in the new environment.
    assert any(
        re.fullmatch(r'python3\.13 -m pip install -q -r requirements.txt',
                     call) for call in calls)
    assert not any(
        call.startswith(('python3 -m', 'python3.10 -m')) for call in calls)


def test_no_supported_interpreter_names_those_found(sandbox):
    _interpreter(sandbox, 'python3', '3.9')
    _interpreter(sandbox, 'python3.15', '3.15')
    _interpreter(sandbox, 'python3.14', '3.15')  # a misnamed one
    result = _run(sandbox)
    assert result.returncode == 1
    assert 'no supported Python found; mvlt needs Python 3.10 to 3.14' in \
        result.stderr
    assert 'Found: python3 (3.9) python3.14 (3.15).' in result.stderr
    assert 'PYTHON=/path/to/python3.12 bash tools/setup_env.sh' in \
        result.stderr
    assert all(' -c ' in call for call in _calls(sandbox))


def test_venv_of_an_unsupported_python_is_made_anew(sandbox):
    _interpreter(sandbox, 'python3.9', '3.9')
    venv_python = sandbox['repo'] / '.venv' / 'bin' / 'python'
    venv_python.parent.mkdir(parents=True)
    shutil.copy(sandbox['bin'] / 'python3.9', venv_python)
    _interpreter(sandbox, 'python3.12', '3.12')
    result = _run(sandbox)
    assert result.returncode == 0, result.stderr
    assert '.venv has Python 3.9, not one of 3.10 to 3.14' in result.stderr
    assert 'python3.12 -m venv --clear .venv' in _calls(sandbox)


def test_stated_range_is_the_same_everywhere():
    script = open(os.path.join(REPO, 'tools', 'setup_env.sh')).read()
    low = re.search(r'^MIN_MINOR=(\d+)$', script, re.M).group(1)
    high = re.search(r'^MAX_MINOR=(\d+)$', script, re.M).group(1)
    setup = open(os.path.join(REPO, 'setup.py')).read()
    assert f"python_requires='>=3.{low},<3.{int(high) + 1}'" in setup
    readme = open(os.path.join(REPO, 'README.md')).read()
    assert f'Python 3.{low} to 3.{high}' in readme
