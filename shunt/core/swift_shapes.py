"""Remote Swift answers in the shapes the shunt's S3 paths read.

:class:`shunt.core.swift_remote.SwiftRemote` answers the proxy's calls
(``head_object``, ``get_object``, ``list_objects``...) with the dicts boto3
gives for S3, so every shunt path serves a ``protocol: "swift"`` profile
unchanged. The translation of the remote Swift response headers into the
lower-case ``ResponseMetadata.HTTPHeaders``:

=================================  ==========================================
``HTTPHeaders`` key                from the remote Swift response
=================================  ==========================================
``content-type``, ``etag``         as they are; the Etag bare (an SLO's or
                                   DLO's quoted Etag also as
                                   ``x-swift-etag-quoted``)
``last-modified``,                 as they are
``content-length``,
``content-range``
``content-disposition``, ...       the headers Swift's object server keeps
                                   (:data:`shunt.core.headers.PASSED_HEADERS`)
``x-amz-meta-<name>``              ``X-Object-Meta-<name>``, the value
                                   encoded so that
                                   :func:`shunt.core.headers.decode_meta_value`
                                   gives it back exactly
``x-amz-meta-x-delete-at``         ``X-Delete-At``
``x-swift-static-large-object``    ``X-Static-Large-Object`` (a native remote
                                   SLO; not the ``x-amz-meta-`` key the S3
                                   layout uses for an SLO archived in parts)
``x-swift-object-manifest``        ``X-Object-Manifest`` (a remote DLO)
``x-swift-remote-timestamp``       ``X-Timestamp``
=================================  ==========================================

Other remote headers (``X-Trans-Id``, ``X-Openstack-Request-Id``, ``Date``,
hop-by-hop headers...) are not passed on.

Every function here is pure. Header values are native strings: the bytes
the remote sent, decoded as UTF-8 with ``surrogateescape`` (so metadata that
is not UTF-8 survives byte for byte).
"""

import base64
import datetime
import email.utils
import re
import urllib.parse

from shunt.core.headers import (
    META_PREFIX,
    PASSED_HEADERS,
    bare_etag,
    decode_meta_value,
)

SWIFT_META_PREFIX = 'x-object-meta-'
SLO_HEADER = 'x-swift-static-large-object'
DLO_HEADER = 'x-swift-object-manifest'
QUOTED_ETAG_HEADER = 'x-swift-etag-quoted'
REMOTE_TIMESTAMP_HEADER = 'x-swift-remote-timestamp'
# remote header -> HTTPHeaders key
RENAMED = {
    'x-static-large-object': SLO_HEADER,
    'x-object-manifest': DLO_HEADER,
    'x-timestamp': REMOTE_TIMESTAMP_HEADER,
    'x-delete-at': META_PREFIX + 'x-delete-at',
}
KEPT = frozenset(('content-type', 'last-modified', 'content-length',
                  'content-range') + PASSED_HEADERS)
# a listing's last_modified
LISTING_TIME = re.compile(
    r'^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$')
_SWIFT_BYTES = re.compile(r';\s*swift_bytes=\d+')
_ENCODED_WORD = re.compile(r'=\?[^?\s]+\?[QqBb]\?[^?\s]*\?=')


def native(raw):
    """A header value as http.client hands it over (latin-1) to the native
    string of the bytes the remote sent."""
    try:
        return raw.encode('latin-1').decode('utf-8', 'surrogateescape')
    except UnicodeEncodeError:
        return raw


def native_headers(raw_headers):
    """Lower-case ``{name: native value}`` of a response's headers (a
    dict or ``(name, value)`` pairs)."""
    if isinstance(raw_headers, dict) or hasattr(raw_headers, 'items'):
        raw_headers = raw_headers.items()
    return {native(name).lower(): native(value)
            for name, value in raw_headers}


def meta_value(value):
    """A native metadata value as an ``x-amz-meta-`` value that
    :func:`shunt.core.headers.decode_meta_value` decodes back to exactly
    ``value``: plain printable ASCII verbatim (unless it holds ``%`` or
    something that looks like an encoded word, which the decoder would
    interpret), anything else as one base64 RFC 2047 encoded word."""
    if (value.isascii() and value.isprintable() and '%' not in value and
            not _ENCODED_WORD.search(value)):
        return value
    raw = value.encode('utf-8', 'surrogateescape')
    return '=?utf-8?b?%s?=' % base64.b64encode(raw).decode('ascii')


def s3_headers(headers):
    """The ``HTTPHeaders`` (see the module docstring) for a remote Swift
    object response's native, lower-case ``headers``."""
    out = {}
    for name, value in headers.items():
        if name in KEPT:
            out[name] = value
        elif name in RENAMED:
            out[RENAMED[name]] = value
        elif name.startswith(SWIFT_META_PREFIX):
            key = name[len(SWIFT_META_PREFIX):]
            if key:
                out[META_PREFIX + key] = meta_value(value)
    etag = headers.get('etag')
    if etag is not None:
        out['etag'] = bare_etag(etag)
        if etag.strip().startswith('"'):
            out[QUOTED_ETAG_HEADER] = etag.strip()
    return out


def http_datetime(value):
    """An HTTP date as an aware UTC datetime, or None."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)


def object_response(status, headers, body=None):
    """A boto3-shaped ``HeadObject``/``GetObject`` response for a remote
    object: ``ResponseMetadata`` (``HTTPStatusCode``, ``HTTPHeaders``) and
    the top-level keys the shunt reads (``ETag`` quoted as boto3 gives it,
    ``ContentLength``, ``ContentType``, ``LastModified``, ``Metadata``
    with the encoded values), plus ``Body`` when given."""
    http_headers = s3_headers(headers)
    response = {
        'ResponseMetadata': {'HTTPStatusCode': status,
                             'HTTPHeaders': http_headers},
        'ETag': '"%s"' % http_headers.get('etag', ''),
        'ContentType': http_headers.get('content-type',
                                        'application/octet-stream'),
        'Metadata': {name[len(META_PREFIX):]: value
                     for name, value in http_headers.items()
                     if name.startswith(META_PREFIX)},
    }
    length = http_headers.get('content-length', '')
    if length.isdigit():
        response['ContentLength'] = int(length)
    modified = http_datetime(http_headers.get('last-modified'))
    if modified is not None:
        response['LastModified'] = modified
    if 'content-range' in http_headers:
        response['ContentRange'] = http_headers['content-range']
    if body is not None:
        response['Body'] = body
    return response


def listing_datetime(value):
    """A Swift listing's ``last_modified`` (UTC, microseconds) as an aware
    datetime, or None."""
    match = LISTING_TIME.match(value or '')
    if not match:
        return None
    *fields, fraction = match.groups()
    micro = int((fraction or '0').ljust(6, '0'))
    return datetime.datetime(*(int(f) for f in fields), micro,
                             tzinfo=datetime.timezone.utc)


def listing_page(rows, prefix, max_keys):
    """A boto3-shaped ``ListObjects`` page for a Swift JSON listing page:
    ``Contents`` (``Key``, ``Size``, ``ETag`` quoted, ``LastModified``,
    and from the Swift row ``ContentType`` without ``swift_bytes`` and, for
    an SLO, ``SloEtag`` quoted), ``CommonPrefixes``,
    ``IsTruncated`` (the page was full) and ``NextMarker``."""
    contents, prefixes = [], []
    for row in rows:
        if 'subdir' in row:
            prefixes.append({'Prefix': row['subdir']})
            continue
        item = {'Key': row.get('name', ''),
                'Size': int(row.get('bytes') or 0),
                'ETag': '"%s"' % bare_etag(row.get('hash')),
                'ContentType': _SWIFT_BYTES.sub(
                    '', row.get('content_type') or '')}
        if row.get('slo_etag'):
            item['SloEtag'] = '"%s"' % bare_etag(row['slo_etag'])
        modified = listing_datetime(row.get('last_modified'))
        if modified is not None:
            item['LastModified'] = modified
        contents.append(item)
    page = {'Contents': contents, 'CommonPrefixes': prefixes,
            'Prefix': prefix, 'MaxKeys': max_keys,
            'IsTruncated': bool(rows) and len(rows) >= max_keys}
    if page['IsTruncated']:
        last = rows[-1]
        page['NextMarker'] = last.get('subdir') or last.get('name', '')
    return page


def swift_post_headers(metadata, content_type, extra=None,
                       segments=None):
    """The headers of the Swift POST that replaces a remote object's
    metadata: ``metadata`` is S3-style user metadata (values as
    :func:`meta_value` or an S3 archiver encoded them, ``x-delete-at``
    among them, and a DLO's URL-quoted local ``x-object-manifest``, which
    then names the copies of its segments in the remote ``segments``
    container, as the sync daemon writes a remote DLO; without it a
    remote DLO becomes a plain object, as Swift's POST makes it),
    ``extra`` boto3 ``CopyObject`` parameters (``ContentDisposition``...).
    """
    out = {'Content-Type': content_type}
    for key, value in metadata.items():
        if key.lower() == 'x-delete-at':
            out['X-Delete-At'] = value
        elif key.lower() == 'x-object-manifest':
            out['X-Object-Manifest'] = '%s/%s' % (
                urllib.parse.quote(segments or ''),
                urllib.parse.unquote(value))
        else:
            out['X-Object-Meta-' + key] = decode_meta_value(value)
    for param, value in (extra or {}).items():
        # ContentDisposition -> Content-Disposition
        out[re.sub(r'(?<!^)(?=[A-Z])', '-', param)] = value
    return out
