"""Install mvlt: ``pip install -e .`` (runtime requirements) or
``pip install -e .[all]`` (with tests and optional tools)."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Requirement lines of requirements/<name>.txt, without comments."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        return [
            line.strip() for line in f
            if line.strip() and not line.startswith(('#', '-'))
        ]


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mvlt', 'version.py')) as f:
        exec(compile(f.read(), 'mvlt/version.py', 'exec'), scope)
    return scope['__version__']


setup(
    name='mvlt',
    version=read_version(),
    description='MVLT: Masked Vision-Language Transformer for fashion, '
    'on MMEngine',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'projects')),
    include_package_data=True,
    # The versions torch 2.14.1 (requirements/runtime.txt) has wheels for;
    # tools/setup_env.sh and README.md state the same range.
    python_requires='>=3.10,<3.15',
    install_requires=read_requirements('runtime'),
    extras_require={
        'tests': read_requirements('tests'),
        'optional': read_requirements('optional'),
        'all': read_requirements('tests') + read_requirements('optional'),
    },
    license='Apache License 2.0',
    zip_safe=False)
