"""The archive stores ("remotes") the functional tests run against.

Backends (:data:`shunt.tools.aio.REMOTE_BACKENDS`): ``moto`` and ``s3api``
(S3 stores, :data:`shunt.tools.aio.S3_BACKENDS`) and ``swift`` (a second,
independent Swift cluster, ``protocol: "swift"`` profiles).

Which backends a test runs on:

* A module opts in to more than the S3 ones with a module-level marker::

      pytestmark = pytest.mark.remotes('moto', 's3api', 'swift')

  Modules without it run on the S3 backends only, and never start a
  ``swift`` cluster. The session fixtures that are a cluster (``aio``,
  ``sync_cluster``: :data:`BACKEND_FIXTURES`) are parametrized per test by
  :func:`parametrize` (``conftest.pytest_generate_tests``), one cluster per
  backend for the whole session.
* ``CLOUD_SHUNT_S3_BACKENDS`` (comma-separated; default: unset) narrows
  that set: ``CLOUD_SHUNT_S3_BACKENDS=swift`` runs only the opted-in
  modules, on the remote Swift (the others are skipped as having no
  backend), ``=moto`` everything on moto only.
* Within a module, ``@pytest.mark.s3_backends(*names, reason=...)`` skips
  a test on the other backends with that reason: for what one store cannot
  do (storage classes on ``s3api``) or what only an S3 store has (tests
  that look into the bucket with boto3, sidecar keys, multipart uploads):
  :data:`S3_ONLY` is the marker for the latter.
"""

import os

import pytest

from shunt.tools.aio import REMOTE_BACKENDS, S3_BACKENDS

ENV_VAR = 'CLOUD_SHUNT_S3_BACKENDS'
MARKER = 'remotes'
# session fixtures that start one cluster per backend
BACKEND_FIXTURES = ('aio', 'sync_cluster')

#: the marker of tests that inspect an S3 store directly
S3_ONLY = pytest.mark.s3_backends(
    *S3_BACKENDS, reason='looks into the S3 bucket (boto3, keys, sidecars, '
    'multipart uploads); a remote Swift has none')


def selected():
    """The backends named in ``CLOUD_SHUNT_S3_BACKENDS`` (None: unset)."""
    wanted = os.environ.get(ENV_VAR, '').strip()
    if not wanted:
        return None
    names = [name.strip() for name in wanted.split(',') if name.strip()]
    unknown = sorted(set(names) - set(REMOTE_BACKENDS))
    if unknown:
        raise pytest.UsageError(
            f'{ENV_VAR}: unknown {", ".join(unknown)} '
            f'(known: {", ".join(REMOTE_BACKENDS)})')
    return names


def backends_for(allowed=S3_BACKENDS):
    """The backends a test allowed ``allowed`` runs on, in
    :data:`REMOTE_BACKENDS` order, narrowed by the environment."""
    wanted = selected()
    return [name for name in REMOTE_BACKENDS if name in allowed and
            (wanted is None or name in wanted)]


def s3_backends():
    """The S3 backends selected (fixtures that need an S3 store)."""
    return backends_for(S3_BACKENDS)


def parametrize(metafunc):
    """``pytest_generate_tests``: parametrize the cluster fixtures a test
    uses over the backends its module's ``remotes`` marker allows (the S3
    ones without it)."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    allowed = tuple(marker.args) if marker else S3_BACKENDS
    unknown = sorted(set(allowed) - set(REMOTE_BACKENDS))
    if unknown:
        raise pytest.UsageError(f'{metafunc.definition.nodeid}: unknown '
                                f'remotes {", ".join(unknown)}')
    for name in BACKEND_FIXTURES:
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, backends_for(allowed),
                                 indirect=True, scope='session')
