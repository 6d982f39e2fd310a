"""Fixtures for functional tests: one all-in-one cluster per S3 backend.

* ``aio`` (session, parametrized over the archive backends): a started
  :class:`shunt.tools.aio.Cluster` with ``reload_interval=0`` (every
  request sees the current mapping file) and an empty mapping file, whose
  archive is moto (``aio[moto]``), Swift's ``s3api`` (``aio[s3api]``) or,
  for modules marked ``pytestmark = pytest.mark.remotes('moto', 's3api',
  'swift')``, a second Swift cluster (``aio[swift]``); so every test using
  it runs once per backend, one cluster at a time.
  ``CLOUD_SHUNT_S3_BACKENDS=moto`` (comma-separated) narrows the set (see
  :mod:`tests.functional.backends`). Stopped at the end (its state dir,
  with every server's log, is kept when CLOUD_SHUNT_KEEP_STATE is set).
* ``@pytest.mark.s3_backends('moto', reason=...)`` runs a test only on the
  backends named (the others skip it with the reason): for what an
  implementation cannot do, such as storage classes on ``s3api``
  (``backends.S3_ONLY``: tests that look into the S3 bucket).
* ``mappings`` (function): ``mappings([profile, ...])`` writes the mapping
  file; the empty mapping ``{"containers": []}`` is restored afterwards.
* ``restart_proxy`` (function): ``restart_proxy(filter_conf=...,
  proxy_conf=...)`` restarts the proxy with changed options; afterwards the
  mapping file is emptied and the proxy restarted with the session's
  configuration.
* ``swift_conn`` (function): a ``swiftclient`` connection as
  ``test:tester`` (admin of ``AUTH_test``); ``swift_conn_factory(user,
  key)`` for other users.
* ``s3``: the boto3 client of the cluster's S3 endpoint.
* ``unique_name``: ``unique_name('prefix')`` gives a fresh name (for
  containers, objects, buckets) so tests never collide.
"""

import itertools
import os
import types
import urllib.parse
import uuid

import pytest

from shunt.tools.aio import Cluster
from tests.functional import backends

# the sync daemon's tests: a 3-container-node cluster (session) and its
# per-test environment
from tests.functional.sync_support import sync_cluster, sync_env  # noqa

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 's3_backends(*names, reason): run only against these '
        'backends of the aio fixture; skipped on the others')
    config.addinivalue_line(
        'markers', 'remotes(*names): the archive backends a module runs on '
        '(default: the S3 ones)')


def pytest_generate_tests(metafunc):
    backends.parametrize(metafunc)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.path).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.functional)
        only = item.get_closest_marker('s3_backends')
        callspec = getattr(item, 'callspec', None)
        params = callspec.params if callspec else {}
        backend = params.get('aio') or params.get('sync_cluster')
        if only and backend and backend not in only.args:
            item.add_marker(pytest.mark.skip(reason='%s: %s' % (
                backend, only.kwargs.get('reason', 'not supported'))))


@pytest.fixture(scope='session')
def aio(request):
    # CLOUD_SHUNT_KEEP_STATE=1 keeps the state dir (configs, logs) to
    # look at after the run; its path is printed at the end
    keep = bool(os.environ.get('CLOUD_SHUNT_KEEP_STATE'))
    cluster = Cluster(reload_interval=0, keep_state_dir=keep,
                      s3_backend=request.param)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        if keep:
            print(f'\naio state dir kept: {cluster.state_dir}')


def _restore(aio):
    aio.write_mappings([])
    if not aio.proxy_running():
        aio.restart_proxy()


@pytest.fixture
def mappings(aio):
    def write(profiles):
        aio.write_mappings(profiles)
    yield write
    _restore(aio)


@pytest.fixture
def restart_proxy(aio):
    restarted = []

    def restart(filter_conf=None, proxy_conf=None):
        restarted.append(True)
        aio.restart_proxy(filter_conf=filter_conf, proxy_conf=proxy_conf)
    yield restart
    aio.write_mappings([])
    if restarted or not aio.proxy_running():
        aio.restart_proxy()


@pytest.fixture
def swift_conn(aio):
    conn = aio.swift_conn('test:tester', 'testing')
    yield conn
    conn.close()


@pytest.fixture
def swift_conn_factory(aio):
    conns = []

    def make(user='test:tester', key='testing', **kwargs):
        conn = aio.swift_conn(user, key, **kwargs)
        conns.append(conn)
        return conn
    yield make
    for conn in conns:
        conn.close()


@pytest.fixture
def s3(aio):
    if aio.remote is not None:
        pytest.skip('the s3 fixture looks into an S3 bucket; the archive '
                    'is a remote Swift here')
    return aio.s3_client()


_counter = itertools.count()


@pytest.fixture(scope='session')
def unique_name():
    """``unique_name(prefix='c')`` -> ``'<prefix>-<n>-<random>'``
    (lowercase, valid as a Swift container and an S3 bucket name)."""
    run = uuid.uuid4().hex[:8]

    def make(prefix='c'):
        return f'{prefix}-{next(_counter)}-{run}'.lower()
    return make


@pytest.fixture
def tester(aio):
    """test:tester's swiftclient connection, token, ``/v1/<account>`` path
    and account name."""
    url, token = aio.token('test:tester', 'testing')
    base = urllib.parse.urlsplit(url).path
    return types.SimpleNamespace(conn=aio.swift_conn(), token=token,
                                 base=base, account=base.split('/')[2])
