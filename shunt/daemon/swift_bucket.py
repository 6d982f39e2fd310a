"""What the sync daemon writes into a remote Swift container, and how it
tells it is there (profiles with ``"protocol": "swift"``).

The remote layout is 1space's, so containers it filled stay readable, with
its known defects fixed (values kept as they were, timestamps kept,
containers created, no segment-name collisions):

object
    ``<remote container>/<object name>`` (the object's own name: a swift
    profile has no key prefix), remote container =
    ``SwiftRemote.remote_container(profile)`` (``aws_bucket``, or
    ``aws_bucket`` + the local container for ``/*`` profiles), created
    when missing with the profile's ``storage_policy``.
``Content-Type``
    the object's, without Swift's internal ``swift_bytes`` parameter.
``X-Object-Meta-<Name>``
    the object's user metadata, names and values byte for byte as Swift
    keeps them (1space lower-cased the values).
``Content-Encoding``, ``Content-Disposition``, ...
    every header Swift's object server keeps (:data:`PASSED_HEADERS`), and
    ``X-Delete-At``.
``X-Timestamp``
    the local version. The remote keeps it only where its proxy lets a
    client set it (gatekeeper's ``shunt_inbound_x_timestamp = false``);
    elsewhere the remote object's own timestamp is the copy's time.
``X-Object-Meta-Swift-Timestamp``
    the local version's ``Timestamp.internal`` in every case (the shunt
    answers it as ``X-Timestamp``/``Last-Modified``, and the daemon's
    up-to-date and delete decisions use it; never shown to clients).
``X-Object-Meta-Swift-Source-Dlo-Etag``
    on a DLO manifest: the MD5 of its segments' Etags (1space's key).

Large objects stay native large objects:

* an SLO becomes a remote SLO whose segments are in
  ``<remote container>_segments``, each named
  ``<local segment container>/<local segment name>`` (segments of two
  local containers with the same name never collide); the manifest keeps
  byte ranges and inline ``data`` segments; a nested SLO becomes a remote
  SLO of its own in the segments container, under the same naming (its
  segments copied first), referred to by its parent's manifest.
* a DLO becomes a remote DLO: every object of its local prefix is copied
  under the same naming, and the manifest carries
  ``X-Object-Manifest: <remote container>_segments/<local container>/
  <prefix>``.

A remote copy is *the same* as a local version (:func:`remote_state`) when
its bytes are (size and Etag; an SLO's Etag is Swift's SLO Etag, a DLO's
the MD5 of its segments' Etags and its manifest header points at our
segments) and its metadata, content type, kept headers and
``swift-timestamp`` are what the daemon would write now.

Everything here is pure.
"""

import base64
import hashlib
import json
import urllib.parse

from swift.common.swob import wsgi_to_str
from swift.common.utils import Timestamp, config_true_value

from shunt.core import headers as shunt_headers
from shunt.core.manifest import Segment
from shunt.core.tombstones import parse as parse_timestamp
from shunt.core.tombstones import window

META = 'x-object-meta-'
TIMESTAMP_META = META + shunt_headers.TIMESTAMP_META
DLO_ETAG_META = META + 'swift-source-dlo-etag'
COMBINED_ETAG_META = META + 'combined-etag'
SLO_ETAG_META = META + 'swift-slo-etag'
# metadata keys of archivers (ours and 1space's), never copied from a
# local object's user metadata
BOOKKEEPING = frozenset(
    [META + k for k in shunt_headers.BOOKKEEPING_META] +
    [DLO_ETAG_META, COMBINED_ETAG_META, SLO_ETAG_META])
# headers Swift's object server keeps as they were PUT
PASSED_HEADERS = shunt_headers.PASSED_HEADERS + ('x-delete-at',)
SWIFT_BYTES_PARAM = ';swift_bytes='
# how many segments of a remote DLO prefix are listed per request
LISTING_LIMIT = 10000


class NotArchivable(ValueError):
    """A local object the remote Swift cannot hold the way it is (SLOs
    nested deeper than Swift allows, a nested manifest that is not what
    its parent says): retrying does not help until it changes."""


def strip_swift_bytes(content_type):
    head, sep, _tail = content_type.partition(SWIFT_BYTES_PARAM)
    if not sep:
        return content_type
    # a parameter after swift_bytes (Swift puts it last, but be exact)
    rest = _tail.split(';', 1)
    return head + (';' + rest[1] if len(rest) > 1 else '')


def object_headers(local_headers, version):
    """The headers (native strings) the remote copy of a local version
    carries, from the local object's headers (WSGI strings, as the
    internal client gives them): content type, user metadata, kept
    headers and ``swift-timestamp``. Not the Etag, size or X-Timestamp
    (the caller's)."""
    out = {}
    for name, value in local_headers.items():
        lower = name.lower()
        value = wsgi_to_str(value)
        if lower.startswith(META):
            if lower in BOOKKEEPING or not value.strip():
                continue
            out[name] = value
        elif lower in PASSED_HEADERS and value.strip():
            out[name] = value
    out['Content-Type'] = strip_swift_bytes(wsgi_to_str(
        local_headers.get('Content-Type') or 'application/octet-stream'))
    out['X-Object-Meta-Swift-Timestamp'] = Timestamp(version).internal
    return out


def comparable(headers):
    """What :func:`remote_state` compares of a set of headers: user and
    bookkeeping metadata, content type and kept headers, lower-case names,
    values stripped (HTTP strips them in transit)."""
    out = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(META) or lower in PASSED_HEADERS:
            if value is not None and value.strip():
                out[lower] = value.strip()
        elif lower == 'content-type':
            out[lower] = strip_swift_bytes(value.strip())
    # bookkeeping of other archivers (1space's combined segments) is theirs;
    # a DLO's recorded Etag is that of its segments at the manifest's
    # upload (the live DLO Etag is what is compared)
    for key in (SLO_ETAG_META, COMBINED_ETAG_META, DLO_ETAG_META):
        out.pop(key, None)
    return out


def remote_version(remote_headers):
    """The local version a remote copy says it is (None when it was not
    written by this daemon)."""
    return parse_timestamp((remote_headers or {}).get(TIMESTAMP_META))


def as_written(want):
    """The lower-case headers a HEAD just after one ``PUT`` of the plain
    object ``want`` would show when that PUT's answer carried its Etag
    (the remote checked the bytes against it): its size, Etag and the
    ``swift-timestamp`` sent with it."""
    return {'content-length': str(want.size), 'etag': want.etag,
            TIMESTAMP_META: want.version.internal}


def manifest_header(segments_container, local_value):
    """A remote DLO's ``X-Object-Manifest`` for a local DLO's (``<c>/
    <prefix>`` as the client wrote it, URL-quoted or not)."""
    return '%s/%s' % (urllib.parse.quote(segments_container),
                      local_value)


def dlo_prefix(local_value):
    """``(container, prefix)`` of a local ``X-Object-Manifest`` value
    (native string), as Swift's DLO middleware reads it; None when it is
    not ``<container>/<prefix>``."""
    value = urllib.parse.unquote(local_value.strip())
    container, sep, prefix = value.partition('/')
    if not sep or not container:
        return None
    return container, prefix


def dlo_etag(hashes):
    """A DLO's Etag: the MD5 of its segments' Etags, quotes stripped."""
    digest = hashlib.md5(usedforsecurity=False)
    for value in hashes:
        digest.update(shunt_headers.bare_etag(value).encode('ascii'))
    return digest.hexdigest()


def segment_name(container, obj):
    """The remote name (in the segments container) of a local segment."""
    return '%s/%s' % (container, obj)


def slo_manifest_body(manifest, segments_container):
    """The ``?multipart-manifest=put`` body of a remote SLO with the
    segments of ``manifest`` (a :class:`shunt.core.manifest.Manifest`)
    copied into ``segments_container`` (a nested SLO: as a remote SLO
    there, its size left to the remote to fill in)."""
    entries = []
    for seg in manifest.segments:
        if seg.data is not None:
            entries.append({'data': base64.b64encode(seg.data).decode(
                'ascii')})
            continue
        entry = {'path': '/%s/%s' % (segments_container, segment_name(
            seg.container, seg.obj)), 'etag': seg.hash,
            'size_bytes': None if seg.sub_slo else seg.size}
        if seg.range is not None:
            entry['range'] = seg.range
        entries.append(entry)
    return json.dumps(entries).encode('utf-8')


def segments_to_copy(manifest):
    """The distinct local objects an SLO's segments read from (whole
    objects, ranges of them; not nested SLOs): ``[(container, obj, etag,
    size, content_type)]``."""
    seen, out = set(), []
    for seg in manifest.segments:
        if seg.data is not None or seg.sub_slo:
            continue
        if (seg.container, seg.obj) in seen:
            continue
        seen.add((seg.container, seg.obj))
        out.append((seg.container, seg.obj, seg.hash, seg.size,
                    seg.content_type or 'application/octet-stream'))
    return out


def nested_slos(manifest):
    """The distinct nested SLOs of a manifest: ``[Segment]``."""
    seen, out = set(), []
    for seg in manifest.segments:
        if seg.sub_slo and (seg.container, seg.obj) not in seen:
            seen.add((seg.container, seg.obj))
            out.append(seg)
    return out


class Want:
    """What the remote copy of one local version must be.

    ``kind`` is ``plain``, ``slo`` or ``dlo``; ``size`` and ``etag`` are
    what a remote HEAD answers for it (an SLO: Swift's SLO Etag and
    content size; a DLO: the MD5 of its segment Etags and their total
    size); ``headers`` what is written with it (:func:`object_headers`,
    plus a DLO's manifest header and ``swift-source-dlo-etag``)."""

    def __init__(self, kind, size, etag, headers, version):
        self.kind = kind
        self.size = size
        self.etag = etag
        self.headers = headers
        self.version = Timestamp(version)

    @property
    def manifest(self):
        return self.headers.get('X-Object-Manifest')


def same_manifest(remote_headers, want):
    """Does a remote DLO point where ``want``'s manifest does?"""
    return urllib.parse.unquote(
        remote_headers.get('x-object-manifest') or '') == \
        urllib.parse.unquote(want.manifest or '')


def only_segments_differ(remote_headers, want):
    """Is the remote copy a DLO manifest of exactly the wanted version
    whose segments are not all there yet (its own PUT is done: copying
    the segments is all that is left)?"""
    return want.kind == 'dlo' and remote_headers is not None and \
        remote_version(remote_headers) == want.version and \
        same_manifest(remote_headers, want) and \
        not config_true_value(remote_headers.get('x-static-large-object'))


def same_content(remote_headers, want):
    """Does the remote copy (a HEAD's lower-case headers) hold the bytes
    of ``want``, as the same kind of object?"""
    h = remote_headers
    try:
        size = int(h.get('content-length'))
    except (TypeError, ValueError):
        return False
    if size != want.size or \
            shunt_headers.bare_etag(h.get('etag')) != want.etag:
        return False
    is_slo = config_true_value(h.get('x-static-large-object'))
    if want.kind == 'slo':
        return is_slo
    if is_slo:
        return False
    if want.kind == 'dlo':
        return same_manifest(h, want)
    return not h.get('x-object-manifest')


def remote_state(remote_headers, want):
    """Compare the remote copy (a HEAD's lower-case headers, or None) with
    the local version: ``absent``, ``newer`` (the remote holds a later
    version: leave it), ``differs`` (upload), ``metadata`` (same bytes,
    other metadata: POST) or ``same``."""
    if remote_headers is None:
        return 'absent'
    theirs = remote_version(remote_headers)
    if theirs is not None and theirs > want.version:
        return 'newer'
    if not same_content(remote_headers, want):
        return 'differs'
    if comparable(remote_headers) == comparable(want.headers):
        return 'same'
    return 'metadata'


def verify_problem(remote_headers, want):
    """Why the remote copy (a HEAD after the upload) is not a verified
    copy of exactly ``want``'s version (a sentence), or None."""
    if remote_headers is None:
        return 'the remote copy is missing after the upload'
    if not same_content(remote_headers, want):
        return 'the remote copy does not have the local size and Etag'
    if remote_version(remote_headers) != want.version:
        return 'the remote copy is not of the local version'
    return None


def delete_reaches(remote_headers, deleted_at, skew):
    """Does a delete at ``deleted_at`` (the tombstone's Timestamp) apply to
    the remote copy? A copy written by this daemon is decided by its
    ``swift-timestamp`` (yes exactly when older than the delete); any other
    copy by its ``X-Timestamp`` (the remote cluster's clock): yes only when
    older than the delete by more than ``skew`` + 1 s (a copy that may have
    been written after the delete is never deleted)."""
    theirs = remote_version(remote_headers)
    if theirs is not None:
        return theirs < deleted_at
    written = parse_timestamp(remote_headers.get('x-timestamp'))
    if written is None:
        return False
    return written.timestamp < deleted_at.timestamp - window(skew)


def owned_segment_path(path, segments_container, account, container, obj,
                       owned):
    """Is the remote segment ``path`` (``/<c>/<name>`` of a remote
    manifest) one the daemon copied for ``obj`` alone? ``owned(account,
    container, obj, seg)`` is the local rule (the local segment
    ``<lc>/<lo>`` the remote name stands for belongs to ``obj`` by
    swiftclient's conventions)."""
    prefix = '/%s/' % segments_container
    if not path.startswith(prefix):
        return False
    local_c, sep, local_o = path[len(prefix):].partition('/')
    if not sep or not local_o:
        return False
    seg = Segment(local_c, local_o, None, None, 0)
    return owned(account, container, obj, seg)
