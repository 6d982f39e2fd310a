"""The sync daemon's process: options, exit statuses, signals, the
``sync-status`` command; each run in a subprocess of its own (the daemon
monkey-patches eventlet and points Swift at its ``swift_dir``)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from shunt.core.config import ConfigError
from shunt.daemon.daemon import IC_CONF_BODY, Options, internal_client_conf
from tests.unit.daemon_support import (
    T0,
    Cluster,
    FakeHandler,
    write_node_config,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def hash_suffix(monkeypatch):
    from swift.common import utils
    monkeypatch.setattr(utils, 'HASH_PATH_SUFFIX', b'unit-test-suffix')


@pytest.fixture
def node(tmp_path):
    cluster = Cluster(tmp_path, replicas=1)
    cluster.write_mapping({})
    return cluster


def run(*args, timeout=60):
    return subprocess.run([sys.executable, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize('option,value,words', [
    ('interval', 'soon', 'expected a number'),
    ('concurrency', '0', 'expected a whole number >= 1'),
    ('concurrency', '2.5', 'whole number'),
    ('verification_slack', '-1', '>= 0'),
    ('container_time', 'nan', 'number'),
    ('mount_check', 'maybe', 'true or false'),
    ('s3_max_attempts', '', None),
    # the row handler's own options
    ('list_check_rows', 'lots', 'expected a whole number >= 0'),
    ('small_object_size', '-1', '>= 0'),
    ('remote_clock_skew', 'a while', 'expected a number'),
    ('part_size', '1024', f'>= {5 * 1024 * 1024}'),
    ('slo_workers', '0', '>= 1'),
    ('verify_with_head', 'perhaps', 'true or false'),
    ('list_check_rows', '0', None),
])
def test_options_errors_name_file_section_and_option(option, value, words):
    conf = {option: value}
    if words is None:
        Options(conf, '/etc/swift/container-server.conf')   # empty: default
        return
    with pytest.raises(ConfigError) as exc:
        Options(conf, '/etc/swift/container-server.conf')
    msg = str(exc.value)
    assert msg.startswith('/etc/swift/container-server.conf: '
                          f'[cloud-shunt-sync] {option}: ')
    assert words in msg and repr(value) in msg


def test_defaults():
    options = Options({}, 'x.conf')
    assert (options.interval, options.concurrency,
            options.verification_slack, options.container_time) == \
        (300, 8, 3600, 60)
    assert options.conf_file == '/etc/swift/cloud-shunt.json'
    assert options.status_dir == '/var/lib/cloud-shunt-sync'
    assert options.mount_check is True and options.bind_port == 6201


def test_builtin_internal_client_config_uses_the_swift_dir():
    options = Options({'swift_dir': '/srv/aio/etc'}, 'x.conf')
    conf = internal_client_conf(options)
    text = conf.contents.getvalue() if hasattr(conf, 'contents') else \
        IC_CONF_BODY.format(swift_dir='/srv/aio/etc')
    assert 'swift_dir = /srv/aio/etc' in text
    assert 'pipeline = catch_errors proxy-logging cache proxy-server' in text
    options = Options({'internal_client_conf_path': '/etc/ic.conf'}, 'x')
    assert internal_client_conf(options) == '/etc/ic.conf'


def test_config_errors_exit_1_naming_file_and_option(node):
    path = write_node_config(node, section={'interval': 'often'})
    result = run('-m', 'shunt.daemon', path, '--once')
    assert result.returncode == 1
    assert f'{path}: [cloud-shunt-sync] interval: expected a number' in \
        result.stderr
    missing = str(node.root) + '/nope.conf'
    result = run('-m', 'shunt.daemon', missing, '--once')
    assert result.returncode == 1 and f'{missing}: no such config file' in \
        result.stderr
    bare = os.path.join(node.root, 'bare.conf')
    with open(bare, 'w') as fp:
        fp.write(f'[DEFAULT]\nswift_dir = {node.swift_dir}\n')
    result = run('-m', 'shunt.daemon', bare, '--once')
    assert result.returncode == 1
    assert 'Unable to find cloud-shunt-sync config section' in result.stderr
    # a status_dir that cannot be written: named
    blocker = os.path.join(node.root, 'a-file')
    open(blocker, 'w').close()
    path = write_node_config(node, section={
        'status_dir': os.path.join(blocker, 'status')})
    result = run('-m', 'shunt.daemon', path, '--once')
    assert result.returncode == 1
    assert f'{path}: [cloud-shunt-sync] status_dir: cannot write progress ' \
        f'files in {blocker}/status' in result.stderr
    # a user that does not exist: named
    path = write_node_config(node, default={'user': 'no-such-user-here'})
    result = run('-m', 'shunt.daemon', path, '--once')
    assert result.returncode == 1
    assert f"{path}: [DEFAULT] user: no such user 'no-such-user-here'" in \
        result.stderr
    # swift_dir without swift.conf: named
    path = write_node_config(node, default={'swift_dir': node.root})
    result = run('-m', 'shunt.daemon', path, '--once')
    assert result.returncode == 1 and 'swift.conf: no such file' in \
        result.stderr


def test_once_exit_status(node):
    # nothing mapped on this node: a successful pass
    path = write_node_config(node)
    result = run('-m', 'shunt.daemon', path, '--once', '-v')
    assert result.returncode == 0, result.stderr
    assert 'Pass done: 0 container DB(s)' in result.stderr
    # a mapped container whose rows cannot be handled (no object server
    # answers): exit 1
    node.put('c', ['x'])
    result = run('-m', 'shunt.daemon', path, '--once', '-v')
    assert result.returncode == 1, result.stderr
    assert 'Container pass AUTH_test/c: 0 handled, 1 failed' in result.stderr
    assert 's3cr3t' not in result.stderr
    # an invalid mapping file: exit 1
    with open(node.mapping, 'w') as fp:
        fp.write('{')
    result = run('-m', 'shunt.daemon', path, '--once')
    assert result.returncode == 1


def test_dry_run_and_sync_status_commands(node):
    node.put('c', ['x', 'y'])
    path = write_node_config(node)
    result = run('-m', 'shunt.daemon', path, '--dry-run')
    assert result.returncode == 0, result.stderr
    assert "AUTH_test/c: would act on 2 row(s)" in result.stdout
    assert "own row 1: copy 'x'" in result.stdout
    result = run('-m', 'shunt.tools.cli', 'sync-status', path, '--dry-run',
                 '--json')
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    assert entry['would_handle'] == 2
    # nothing walked yet
    result = run('-m', 'shunt.tools.cli', 'sync-status', path)
    assert result.returncode == 0 and 'No progress files' in result.stdout
    # after a pass (fake handler, in this process)
    daemon = node.daemon(0, FakeHandler({'y': [_failure()]}))
    daemon.run_once()
    result = run('-m', 'shunt.tools.cli', 'sync-status', path)
    assert result.returncode == 0, result.stderr
    assert 'AUTH_test/c -> http://127.0.0.1:1 bucket bucket (sync)' in \
        result.stdout
    assert '2 done, 0 pending, 0 unverified, 1 failing, 0 deferred' in \
        result.stdout
    assert "failing row 2 'y': remote, 1 attempt(s)" in result.stdout
    result = run('-m', 'shunt.tools.cli', 'sync-status', path, '--json')
    (entry,) = json.loads(result.stdout)
    assert entry['objects']['uploaded'] == 1
    assert entry['bytes']['uploaded'] == 10
    assert entry['rows']['failing'] == 1 and entry['lag'] == 0
    assert 's3cr3t' not in result.stdout


def _failure():
    from tests.unit.daemon_support import Failed
    return Failed('remote')


def test_sigterm_stops_the_daemon_cleanly(node):
    path = write_node_config(node, section={'interval': '1'})
    log = os.path.join(node.root, 'daemon.log')
    with open(log, 'w') as err_file:
        proc = subprocess.Popen([sys.executable, '-m', 'shunt.daemon', path,
                                 '-v'], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=err_file)
    try:
        deadline = time.monotonic() + 30
        # the signal handlers are installed before "Starting" is logged
        while time.monotonic() < deadline and proc.poll() is None:
            with open(log) as fp:
                if 'Starting' in fp.read():
                    break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(log) as fp:
        err = fp.read()
    assert proc.returncode == 0, err
    assert 'Stopped on request' in err and 'Exited' in err


def test_progress_time_is_written(node):
    node.put('c', ['x'])
    daemon = node.daemon(0, FakeHandler())
    daemon.clock.now = T0
    daemon.run_once()
    status_dir = os.path.join(node.root, 'status0')
    (name,) = os.listdir(status_dir)
    with open(os.path.join(status_dir, name)) as fp:
        data = json.load(fp)
    assert data['last_pass']['end'] == T0 and data['account'] == 'AUTH_test'
