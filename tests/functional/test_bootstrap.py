"""The README's commands on the distribution's own Python (PEP 668).

A throw-away copy of the checkout is bootstrapped with only the system's
``/usr/bin/python3`` on PATH (no pyenv, no active virtualenv, no
``PYTHON``): the bootstrap must create the project's ``.venv`` instead of
installing into the "externally managed" distribution Python, and the demo
must then pass its check from that environment, printing commands that
work as pasted. Skipped where ``/usr/bin/python3`` is not externally
managed (nothing to prove there) or with CLOUD_SHUNT_SKIP_BOOTSTRAP_TEST=1.
"""

import os
import re
import shutil
import subprocess
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SYSTEM_PYTHON = '/usr/bin/python3'


def _externally_managed(python):
    if not os.access(python, os.X_OK):
        return False
    stdlib = subprocess.run(
        [python, '-c', 'import sysconfig; print(sysconfig.get_path('
         '"stdlib"))'], capture_output=True, text=True).stdout.strip()
    return os.path.exists(os.path.join(stdlib, 'EXTERNALLY-MANAGED'))


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _externally_managed(SYSTEM_PYTHON),
                       reason=f'{SYSTEM_PYTHON} is not externally managed'),
    pytest.mark.skipif(bool(os.environ.get('CLOUD_SHUNT_SKIP_BOOTSTRAP_TEST')),
                       reason='CLOUD_SHUNT_SKIP_BOOTSTRAP_TEST is set'),
]


@pytest.fixture
def checkout(tmp_path):
    files = subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout.split('\n')
    dest = tmp_path / 'checkout'
    for name in filter(None, files):
        src = os.path.join(ROOT, name)
        if not os.path.isfile(src) or name.startswith('.venv'):
            continue
        os.makedirs(dest / os.path.dirname(name), exist_ok=True)
        shutil.copy2(src, dest / name)
    return dest


def test_demo_on_the_distribution_python(checkout):
    env = {'PATH': '/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin',
           'HOME': os.environ.get('HOME', '/root'), 'LANG': 'C.UTF-8'}
    for name in ('PIP_FIND_LINKS', 'PIP_CERT', 'PIP_DEFAULT_TIMEOUT',
                 'PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL'):
        if name in os.environ:
            env[name] = os.environ[name]
    out = subprocess.run(
        ['bash', 'tools/demo.sh', '--check'], cwd=checkout, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 'OK' in out.stdout.splitlines()
    venv_python = checkout / '.venv' / 'bin' / 'python'
    assert venv_python.exists()
    # the demo's swift commands name the virtualenv's client
    assert str(checkout / '.venv' / 'bin' / 'swift') in out.stdout
    # nothing went into the distribution's Python
    purelib = sysconfig.get_paths(vars={'base': '/usr'})['purelib']
    assert not [n for n in os.listdir(purelib) if n.startswith('swift')] \
        if os.path.isdir(purelib) else True
    # the printed S3 listing works as pasted (a shell one-liner)
    listing = [line.strip() for line in out.stdout.splitlines()
               if 'list_objects_v2' in line]
    assert listing and re.search(r'\.venv/bin/python', listing[0])
