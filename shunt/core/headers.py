"""Header translation between S3 responses and Swift responses.

An archived object answers with the headers Swift gives for a local object
and nothing of S3's own (``x-amz-*``, S3's ``Server``, hop-by-hop headers):

==========================  ===============================================
Swift header                from S3
==========================  ===============================================
``Content-Type``            ``Content-Type``
``Etag``                    ``ETag``, bare as Swift shows a plain object's
                            (a remote Swift's large object: quoted, from
                            ``x-swift-etag-quoted``)
``X-Timestamp``             ``x-amz-meta-swift-timestamp`` (the archived
                            version's own, written by the sync daemon),
                            else a remote Swift's own ``X-Timestamp``
                            (``x-swift-remote-timestamp``), else
                            ``Last-Modified`` (the upload's time)
``Last-Modified``           ... of that same time, as Swift rounds it
``X-Object-Meta-<name>``    ``x-amz-meta-<name>``, value decoded
``Content-Encoding``, ...   the headers Swift's object server keeps
                            (``Content-Disposition``, ``Content-Encoding``,
                            ``Content-Language``, ``Cache-Control``,
                            ``Expires``, ``X-Robots-Tag``)
``X-Delete-At``             ``x-amz-meta-x-delete-at`` when the archiver
                            kept it
==========================  ===============================================

Metadata values are decoded the ways archivers wrote them: RFC 2047 encoded
words (``=?UTF-8?B?w6k=?=``), legacy percent-encoding (1space before late
2018 quoted every value; a value is taken as legacy-quoted only when it holds
nothing but characters such quoting leaves plus at least one valid ``%XX``,
and un-quoting yields valid UTF-8), and raw UTF-8 bytes some S3 clones keep.

The archiver's own bookkeeping keys (``x-static-large-object``,
``x-object-manifest``, ``swift-slo-etag``) are not shown as user metadata.

All functions are pure; values handed to swob are WSGI strings.
"""

import base64
import email.charset
import email.header
import email.utils
import re
import urllib.parse

from swift.common.swob import str_to_wsgi, wsgi_to_str
from swift.common.utils import Timestamp

META_PREFIX = 'x-amz-meta-'
SWIFT_META_PREFIX = 'X-Object-Meta-'
# headers Swift's object server stores and returns as they were PUT
PASSED_HEADERS = ('content-disposition', 'content-encoding',
                  'content-language', 'cache-control', 'expires',
                  'x-robots-tag')
# the archived object's Swift timestamp (``Timestamp.internal``), written by
# this project's sync daemon: the shunt answers it as ``X-Timestamp`` and
# ``Last-Modified`` and decides deletes on Swift's own clock with it
TIMESTAMP_META = 'swift-timestamp'
# the Swift Etag (MD5) of a plain object the sync daemon had to upload in
# parts (over S3's 5 GiB single-PUT limit): answered as its ``Etag``
ETAG_META = 'swift-etag'
# user-metadata keys an archiver uses for its own bookkeeping (the last two
# are 1space's on remote Swift clusters)
BOOKKEEPING_META = frozenset(('x-static-large-object', 'x-object-manifest',
                              'swift-slo-etag', 'x-delete-at',
                              TIMESTAMP_META, ETAG_META,
                              'swift-source-dlo-etag', 'combined-etag'))
# what a remote Swift cluster's answer carries besides the S3-shaped
# headers (see shunt.core.swift_remote): its native large-object flags, its
# Etag as it quotes it, its X-Timestamp. S3 never sends these names.
SWIFT_SLO = 'x-swift-static-large-object'
SWIFT_DLO = 'x-swift-object-manifest'
SWIFT_ETAG_QUOTED = 'x-swift-etag-quoted'
SWIFT_REMOTE_TIMESTAMP = 'x-swift-remote-timestamp'

_MD5 = re.compile(r'^[0-9a-f]{32}$')
_ENCODED_WORD = re.compile(r'=\?[^?\s]+\?[QqBb]\?[^?\s]*\?=')
_LEGACY_QUOTED = re.compile(r'^[A-Za-z0-9_.\-~/%]*$')
_PERCENT_ESCAPE = re.compile(r'%[0-9A-Fa-f]{2}')


def _as_native(raw):
    """http.client hands header values over as latin-1; S3 clones that keep
    raw UTF-8 bytes in metadata are read back as UTF-8."""
    try:
        return raw.encode('latin-1').decode('utf-8')
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _decode_rfc2047(value):
    try:
        parts = email.header.decode_header(value)
    except (email.errors.HeaderParseError, ValueError):
        return value
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or 'ascii'))
        except UnicodeDecodeError:
            if (charset or '').lower().replace('_', '-') not in (
                    'utf-8', 'utf8'):
                return value
            # bytes Swift kept as they were sent (see encode_meta_value)
            out.append(chunk.decode('utf-8', 'surrogateescape'))
        except LookupError:
            return value
    return ''.join(out)


def _decode_legacy_quoted(value):
    if not _LEGACY_QUOTED.match(value) or not _PERCENT_ESCAPE.search(value):
        return None
    if value.count('%') != len(_PERCENT_ESCAPE.findall(value)):
        return None
    try:
        return urllib.parse.unquote_to_bytes(value).decode('utf-8')
    except UnicodeDecodeError:
        return None


def decode_meta_value(raw):
    """The native string an archived metadata value stands for."""
    value = _as_native(raw)
    if _ENCODED_WORD.search(value):
        return _decode_rfc2047(value)
    legacy = _decode_legacy_quoted(value)
    return value if legacy is None else legacy


def bare_etag(etag):
    etag = (etag or '').strip()
    if etag.startswith('W/'):
        etag = etag[2:]
    return etag.strip('"')


def parse_http_date(value):
    """Seconds since the epoch of an HTTP date, or None."""
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def content_range_total(value):
    """The total size in a ``Content-Range: bytes a-b/N`` header, and the
    range it covers as a half-open ``(start, stop)`` pair."""
    match = re.match(r'^bytes (\d+)-(\d+)/(\d+)$', (value or '').strip())
    if not match:
        return None, None
    start, end, total = (int(g) for g in match.groups())
    return total, (start, end + 1)


def user_metadata(s3_headers):
    """``{meta-name: native value}`` of an S3 response's user metadata
    (names lower-case, without the ``x-amz-meta-`` prefix)."""
    return {name[len(META_PREFIX):]: decode_meta_value(value)
            for name, value in s3_headers.items()
            if name.lower().startswith(META_PREFIX)}


def archived_swift_timestamp(s3_headers):
    """The archived version's Swift timestamp (a ``Timestamp``) recorded in
    the archive's :data:`TIMESTAMP_META`, or None (absent or unreadable)."""
    value = s3_headers.get(META_PREFIX + TIMESTAMP_META)
    try:
        ts = Timestamp(value.strip()) if value else None
    except (ValueError, OverflowError, TypeError):
        return None
    return ts if ts is not None and ts > Timestamp(0) else None


def remote_swift_timestamp(s3_headers):
    """A remote Swift cluster's own ``X-Timestamp`` of the object (its
    clock, not ours: shown, never trusted to order deletes), or None."""
    value = s3_headers.get(SWIFT_REMOTE_TIMESTAMP)
    try:
        ts = Timestamp(value.strip()) if value else None
    except (ValueError, OverflowError, TypeError):
        return None
    return ts if ts is not None and ts > Timestamp(0) else None


def swift_object_headers(s3_headers):
    """Swift response headers (WSGI strings) for an archived object, from
    the S3 response's raw, lower-cased headers. ``Content-Length`` is left
    to the caller, who knows whether this was a ranged read."""
    headers = {
        'Content-Type': s3_headers.get('content-type',
                                       'application/octet-stream'),
        'Etag': bare_etag(s3_headers.get('etag')),
        'Accept-Ranges': 'bytes',
    }
    swift_etag = s3_headers.get(META_PREFIX + ETAG_META, '').strip()
    if _MD5.match(swift_etag):
        headers['Etag'] = swift_etag
    quoted = s3_headers.get(SWIFT_ETAG_QUOTED, '').strip()
    if quoted.startswith('"') and _MD5.match(bare_etag(quoted)):
        # a remote Swift's large object: quoted, as Swift shows its own
        headers['Etag'] = quoted
    ts = archived_swift_timestamp(s3_headers)
    if ts is None:
        ts = remote_swift_timestamp(s3_headers)
    if ts is None:
        modified = parse_http_date(s3_headers.get('last-modified'))
        ts = None if modified is None else Timestamp(modified)
    if ts is not None:
        headers['X-Timestamp'] = ts.normal
        headers['Last-Modified'] = email.utils.formatdate(
            ts.ceil(), usegmt=True)
    for name in PASSED_HEADERS:
        if name in s3_headers:
            headers[name.title()] = str_to_wsgi(
                _as_native(s3_headers[name]))
    meta = user_metadata(s3_headers)
    for name, value in meta.items():
        if name in BOOKKEEPING_META:
            continue
        # a name as botocore gives it (latin-1) or native (a remote Swift's)
        headers[SWIFT_META_PREFIX + str_to_wsgi(_as_native(name))] = \
            str_to_wsgi(value)
    delete_at = meta.get('x-delete-at', '').strip()
    if delete_at.isdigit():
        headers['X-Delete-At'] = delete_at
    return headers


def encode_meta_value(value):
    """A native metadata value as an archiver stores it in S3: printable
    ASCII verbatim, anything else as an RFC 2047 encoded word.

    Swift keeps object metadata values as the bytes the client sent, UTF-8
    or not; bytes that are not UTF-8 (surrogate escapes in ``value``, as
    :func:`swob.wsgi_to_str` makes them) are encoded as they are, and
    :func:`decode_meta_value` gives the same bytes back."""
    if value.isascii() and value.isprintable():
        return value
    try:
        return email.charset.Charset('utf-8').header_encode(value)
    except UnicodeEncodeError:
        raw = value.encode('utf-8', 'surrogateescape')
        return '=?utf-8?b?%s?=' % base64.b64encode(raw).decode('ascii')


def s3_metadata(swift_headers):
    """S3 user metadata for the ``X-Object-Meta-*`` headers of a Swift
    request (WSGI strings); names lower-cased as archivers store them."""
    meta = {}
    for name, value in swift_headers.items():
        if name.lower().startswith('x-object-meta-') and value:
            key = name[len(SWIFT_META_PREFIX):].lower()
            if key in BOOKKEEPING_META:
                # the archiver's keys are never a client's to write
                continue
            meta[key] = encode_meta_value(wsgi_to_str(value))
    return meta


def sent_value(value):
    """A header value Swift holds (a WSGI string) as a str for a client
    library that sends str values UTF-8 encoded (botocore; the remote-Swift
    client): the native string of its bytes, so that the store gets the
    very bytes Swift has. A value that is not UTF-8 (or already native) is
    returned as it is."""
    try:
        return value.encode('latin-1').decode('utf-8')
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


# an archived DLO's own keys: a POST keeps them only if it names a manifest
DLO_META = frozenset(('x-object-manifest', 'swift-source-dlo-etag'))


def posted_metadata(s3_headers, post_headers):
    """The metadata an archived object gets from a POST (Swift's replace
    semantics): the archiver's bookkeeping kept, the user metadata of
    ``post_headers`` (WSGI strings); a DLO stays one only if the POST
    says ``X-Object-Manifest`` again, as in Swift (its value URL-quoted,
    as the sync daemon stores it), otherwise it becomes a plain object
    (the manifest object's own bytes)."""
    metadata = {name: value for name, value in
                bookkeeping_metadata(s3_headers).items()
                if name.lower() not in DLO_META}
    metadata.update(s3_metadata(post_headers))
    manifest = {k.lower(): v for k, v in post_headers.items()}.get(
        'x-object-manifest')
    if manifest:
        metadata['x-object-manifest'] = urllib.parse.quote(
            wsgi_to_str(manifest))
    return metadata


def bookkeeping_metadata(s3_headers):
    """The archiver's own metadata keys of an S3 object, kept verbatim when
    its user metadata is replaced."""
    return {name[len(META_PREFIX):]: value
            for name, value in s3_headers.items()
            if name.lower().startswith(META_PREFIX) and
            name[len(META_PREFIX):].lower() in BOOKKEEPING_META and
            name[len(META_PREFIX):].lower() != 'x-delete-at'}
