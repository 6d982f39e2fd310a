"""Where a Swift object lives in the bucket: the archive key layout.

The layout is the one swift-s3-sync/1space wrote, so existing archives are
read in place:

* Hashed (default): ``{P}/{account}/{container}/{object}`` where ``P`` is the
  last six hex digits of ``md5("{account}/{container}")`` with leading zeros
  dropped (1 to 6 lowercase hex characters, never padded).
* ``custom_prefix``: ``{prefix}/{object}`` with the prefix's surrounding
  slashes stripped, or just ``{object}`` for an empty prefix.

A Swift SLO archived as a multipart upload has a sidecar holding its
manifest, named from the SHA-256 of the object name (see
:func:`manifest_key`).

Every function here is pure and takes native (unicode) strings; names are
hashed and joined as UTF-8 with no URL quoting.
"""

import hashlib

MANIFEST_DIR = '.manifests'
MANIFEST_SUFFIX = '.swift_slo_manifest'


def hashed_prefix(account, container):
    """The 1-6 hex character prefix ``P`` for an account/container."""
    digest = hashlib.md5(
        f'{account}/{container}'.encode('utf-8'), usedforsecurity=False)
    return format(int(digest.hexdigest(), 16) % 16 ** 6, 'x')


def _custom(custom_prefix):
    return custom_prefix.strip('/')


def key_prefix(account, container, custom_prefix=None):
    """The key prefix under which a container's objects are archived.

    Listings use it as the S3 ``Prefix`` and strip it from the keys.
    """
    if custom_prefix is None:
        return f'{hashed_prefix(account, container)}/{account}/{container}/'
    cp = _custom(custom_prefix)
    return f'{cp}/' if cp else ''


def object_key(account, container, obj, custom_prefix=None):
    """The S3 key of object ``obj``."""
    return key_prefix(account, container, custom_prefix) + obj


def manifest_key(account, container, obj, custom_prefix=None):
    """The S3 key of the SLO manifest sidecar of object ``obj``."""
    sha = hashlib.sha256(obj.encode('utf-8')).hexdigest()
    name = f'{sha}{MANIFEST_SUFFIX}'
    if custom_prefix is None:
        return (f'{hashed_prefix(account, container)}/{MANIFEST_DIR}/'
                f'{account}/{container}/{name}')
    cp = _custom(custom_prefix)
    return f'{cp}/{MANIFEST_DIR}/{name}' if cp else f'{MANIFEST_DIR}/{name}'
