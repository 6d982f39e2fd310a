"""The S3 implementations the functional tests run against.

``CLOUD_SHUNT_S3_BACKENDS`` (comma-separated names of
:data:`shunt.tools.aio.S3_BACKENDS`; default: every one) chooses them;
session fixtures parametrize over :func:`s3_backends` (``conftest.aio``),
so every test using them runs once per backend.
"""

import os

import pytest

from shunt.tools.aio import S3_BACKENDS

ENV_VAR = 'CLOUD_SHUNT_S3_BACKENDS'


def s3_backends():
    """The backends to run against, in :data:`S3_BACKENDS` order as
    named in ``CLOUD_SHUNT_S3_BACKENDS``; every one when it is unset."""
    wanted = os.environ.get(ENV_VAR, '').strip()
    if not wanted:
        return list(S3_BACKENDS)
    names = [name.strip() for name in wanted.split(',') if name.strip()]
    unknown = sorted(set(names) - set(S3_BACKENDS))
    if unknown:
        raise pytest.UsageError(
            f'{ENV_VAR}: unknown {", ".join(unknown)} '
            f'(known: {", ".join(S3_BACKENDS)})')
    return names
