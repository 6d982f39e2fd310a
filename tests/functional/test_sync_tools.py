"""``cloud-shunt aio`` runs the sync daemon on every container node, as a
long-running process, and stops it with everything else."""

import glob
import os
import signal
import subprocess
import sys
import tempfile
import time


def _cloud_shunt_command():
    script = os.path.join(os.path.dirname(sys.executable), 'cloud-shunt')
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, '-m', 'shunt.tools.cli']


def _running(pattern):
    found = []
    for path in glob.glob('/proc/[0-9]*/cmdline'):
        try:
            with open(path, 'rb') as fp:
                cmdline = fp.read().replace(b'\0', b' ').decode(
                    'utf-8', 'replace')
        except OSError:
            continue
        if pattern in cmdline:
            found.append(cmdline)
    return found


def _read(path):
    try:
        with open(path) as fp:
            return fp.read()
    except OSError:
        return ''


def test_aio_runs_the_daemon_on_every_container_node():
    with tempfile.TemporaryDirectory() as state:
        proc = subprocess.Popen(
            _cloud_shunt_command() + ['aio', '--state-dir', state,
                                      '--container-replicas', '3'],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            daemons = []
            while time.monotonic() < deadline and len(daemons) < 3:
                time.sleep(0.5)
                daemons = [c for c in _running('shunt.daemon')
                           if state in c and '--once' not in c]
            assert len(daemons) == 3, daemons
            for node in ('container', 'container-1', 'container-2'):
                assert any(os.path.join(state, f'{node}-server.conf') in c
                           for c in daemons), node
            # each keeps running and says so in its log
            logs = [os.path.join(state, 'log', f'sync-{node}.log')
                    for node in ('container', 'container-1', 'container-2')]
            deadline = time.monotonic() + 60
            while not all('Starting' in _read(log) for log in logs):
                assert time.monotonic() < deadline, [_read(log)
                                                     for log in logs]
                time.sleep(0.5)
            assert len([c for c in _running('shunt.daemon')
                        if state in c]) == 3
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert 'Sync daemon     cloud-shunt-sync on 3 container node(s)' in \
            out
        assert 'Stopped.' in out
        assert not _running(state)
