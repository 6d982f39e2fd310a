"""What the sync daemon writes into the bucket, and how it tells it is there.

Every archived object carries (the shunt reads all of it back; 1space's
daemon wrote the same keys, all but the timestamp and ``swift-etag``):

key
    :func:`shunt.core.layout.object_key` of the object's name.
``Content-Type``
    the object's, without a ``swift_bytes`` parameter.
``Content-Encoding``, ``Content-Disposition``, ...
    the object's, and ``Content-Language``, ``Cache-Control``,
    ``Expires`` (``X-Robots-Tag`` has no place in S3 and is dropped, as
    is an ``Expires`` that is not an HTTP date).
``x-amz-meta-<name>``
    ``X-Object-Meta-<Name>``, encoded by
    :func:`shunt.core.headers.s3_metadata`.
``x-amz-meta-swift-timestamp``
    the version's ``X-Timestamp`` in its internal form (offset included).
``x-amz-meta-x-delete-at``
    ``X-Delete-At``.
``x-amz-meta-x-object-manifest``
    a DLO manifest's ``X-Object-Manifest``, URL-quoted.
``x-amz-meta-x-static-large-object``
    ``True`` for an SLO.
``x-amz-meta-swift-slo-etag``
    a re-chunked SLO's Swift Etag.
``x-amz-meta-swift-etag``
    the Swift Etag of a plain object over 5 GiB (uploaded in parts).

A bucket copy is *the same* as a local version when its size and Etag are
the object's (for an SLO: the multipart Etag of its segments, or its
``swift-slo-etag``) and its metadata, content type and kept headers are
what the daemon would write now (:func:`remote_state`).
"""

import base64
import binascii
import email.utils
import re
import urllib.parse

from swift.common.swob import wsgi_to_str

from shunt.core import headers as shunt_headers
from shunt.core.manifest import SLO_ETAG_META, SLO_META
from shunt.core.tombstones import parse as parse_timestamp

# the Swift Etag of a plain object uploaded in parts (over 5 GiB)
SWIFT_ETAG_META = shunt_headers.ETAG_META

# PutObject parameters for the headers Swift keeps (shunt.core.headers
# .PASSED_HEADERS, less X-Robots-Tag which S3 has no place for)
PARAMS = (('content-disposition', 'ContentDisposition'),
          ('content-encoding', 'ContentEncoding'),
          ('content-language', 'ContentLanguage'),
          ('cache-control', 'CacheControl'),
          ('expires', 'Expires'))
_SWIFT_BYTES = re.compile(r';\s*swift_bytes=\d+')
_HTTP_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# storage classes whose objects cannot be copied in place
ARCHIVE_CLASSES = frozenset(('GLACIER', 'DEEP_ARCHIVE'))


class BadMetadata(ValueError):
    """Local metadata S3 cannot hold."""


def content_md5(etag):
    """``Content-MD5`` for a hex MD5 Etag, or None if it is not one."""
    try:
        raw = binascii.unhexlify(etag)
    except (binascii.Error, ValueError, TypeError):
        return None
    return base64.b64encode(raw).decode('ascii') if len(raw) == 16 else None


def object_params(headers, version, slo=False, slo_etag=None):
    """``(metadata, content_type, extra)`` for a local object's headers
    (WSGI strings, as the internal client gives them): the S3 user
    metadata, ``ContentType`` and the other ``PutObject`` parameters.
    Raises :class:`BadMetadata` for metadata names S3 cannot take."""
    meta = shunt_headers.s3_metadata(headers)
    headers = {k.lower(): v for k, v in headers.items()}
    for name in meta:
        if not _HTTP_TOKEN.match(name):
            raise BadMetadata(f'metadata name {name!r} cannot be an S3 '
                              f'metadata key')
    meta[shunt_headers.TIMESTAMP_META] = version.internal
    delete_at = (headers.get('x-delete-at') or '').strip()
    if delete_at:
        meta['x-delete-at'] = delete_at
    manifest = headers.get('x-object-manifest')
    if manifest:
        meta['x-object-manifest'] = urllib.parse.quote(wsgi_to_str(manifest))
    if slo:
        meta[SLO_META] = 'True'
    if slo_etag:
        meta[SLO_ETAG_META] = slo_etag
    content_type = shunt_headers.sent_value(_SWIFT_BYTES.sub('', headers.get(
        'content-type') or 'application/octet-stream'))
    extra = {}
    for header, param in PARAMS:
        value = (headers.get(header) or '').strip()
        if not value:
            continue
        if param == 'Expires':
            try:
                value = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                continue
        else:
            value = shunt_headers.sent_value(value)
        extra[param] = value
    return meta, content_type, extra


def _same_extra(extra, raw):
    for header, param in PARAMS:
        want, have = extra.get(param), raw.get(header)
        if param == 'Expires' and want is not None:
            if shunt_headers.parse_http_date(have or '') != \
                    want.timestamp():
                return False
        elif (want or None) != (shunt_headers.sent_value(have.strip())
                                if have else None):
            return False
    return True


def remote_version(head):
    """The Swift Timestamp a bucket copy says it is (None when it was not
    written by this daemon)."""
    meta = head.get('Metadata', {})
    return parse_timestamp(meta.get(shunt_headers.TIMESTAMP_META))


def as_written(size, etag, meta):
    """A ``HeadObject``-shaped record of what one ``PutObject`` wrote
    (``size`` bytes with ``ContentLength``, ``meta`` as its metadata) when
    its answer carried ``etag``: what a HEAD just after it would show
    unless another writer overwrote the key meanwhile."""
    return {'ContentLength': size, 'ETag': '"%s"' % etag,
            'Metadata': dict(meta)}


def same_content(head, size, etag, alt=None):
    """Does the bucket copy (a ``HeadObject`` answer) hold these bytes?
    ``etag`` is the bare S3 Etag they make when uploaded the usual way;
    ``alt`` = ``(metadata key, Swift Etag)`` the Swift Etag recorded by
    an upload of another shape (a re-chunked SLO, a multipart upload of a
    plain object over 5 GiB)."""
    if head.get('ContentLength') != size:
        return False
    if etag and shunt_headers.bare_etag(head.get('ETag')) == etag:
        return True
    return alt is not None and head.get('Metadata', {}).get(
        alt[0]) == alt[1]


def remote_state(head, version, size, etag, meta, content_type, extra,
                 alt=None):
    """Compare the bucket copy (a ``HeadObject`` answer or None) with the
    local version: ``absent``, ``newer`` (the bucket holds a later Swift
    version: leave it), ``differs`` (upload), ``metadata`` (same bytes,
    other metadata: copy in place) or ``same``."""
    if head is None:
        return 'absent'
    theirs = remote_version(head)
    if theirs is not None and theirs > version:
        return 'newer'
    if not same_content(head, size, etag, alt):
        return 'differs'
    have = {k.lower(): v.strip()
            for k, v in head.get('Metadata', {}).items()}
    want = {k: v.strip() for k, v in meta.items()}
    if alt is not None and have.get(alt[0]) == alt[1]:
        want[alt[0]] = alt[1]
    raw = head.get('ResponseMetadata', {}).get('HTTPHeaders', {})
    if have == want and shunt_headers.sent_value(
            head.get('ContentType') or '') == content_type and \
            _same_extra(extra, raw):
        return 'same'
    if head.get('StorageClass') in ARCHIVE_CLASSES:
        # metadata of an archive-class object cannot be changed in place
        return 'differs'
    return 'metadata'
