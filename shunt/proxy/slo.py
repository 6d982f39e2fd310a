"""Archived static large objects: S3 multipart uploads with a manifest sidecar.

An archiver stores a Swift SLO as one S3 object (normally a multipart upload
with one part per segment) whose user metadata carries
``x-static-large-object: True``, plus a JSON *sidecar* holding the SLO
manifest exactly as Swift stored it (a list of ``{"name", "hash", "bytes",
"content_type", "last_modified"}``; see
:func:`shunt.core.layout.manifest_key`).
The shunt serves such an object the way Swift serves a local SLO:

* ``Etag``: the quoted MD5 of the concatenated segment Etags (Swift's SLO
  Etag), ``Content-Length`` the sum of the segments, ``X-Static-Large-Object:
  True`` and ``X-Manifest-Etag`` (the MD5 of the stored manifest);
  conditional requests are evaluated against that Etag;
* ``?multipart-manifest=get`` answers the manifest itself, and
  ``?multipart-manifest=get&format=raw`` the manifest in the form it is
  uploaded with;
* ``?part-number=N`` answers the Nth segment's bytes.

The sidecar is fetched only for objects whose metadata says they are SLOs,
never on the hot path of plain objects, and kept for a minute (per worker,
keyed by the object's Etag, size and date) so that the range requests of a
client streaming an archived SLO do not each cost a second S3 request. A
sidecar that cannot be parsed or that disagrees with the object (its
segments do not add up to the object's size, or an S3 multipart Etag that
does not match its segments) is ignored and logged: the object is then
served as a plain object with its S3 Etag, as is a multipart upload without
a sidecar (objects that other S3 tools uploaded in parts).

Everything but :func:`load_archived_manifest` and the response builders is
pure: no I/O, unit-tested on its own.
"""

import base64
import collections
import hashlib
import json
import time

from swift.common.request_helpers import get_param, get_valid_part_num
from swift.common.swob import (
    HTTPException,
    HTTPRequestedRangeNotSatisfiable,
    Response,
)
from swift.common.utils import config_true_value

from shunt.core import headers as shunt_headers
from shunt.core.layout import manifest_key
from shunt.core.manifest import (  # noqa: F401 (re-exported)
    _HEX32,
    _MPU_ETAG,
    MANIFEST_CONTENT_TYPE,
    MAX_SIDECAR_BYTES,
    SLO_ETAG_META,
    SLO_META,
    Manifest,
    ManifestError,
    Segment,
    fixed_segments,
    mpu_etag,
    parse_manifest,
    slo_etag,
)
from shunt.core.remote import RemoteError


def check_object(manifest, size, s3_etag, slo_etag_meta=None):
    """Raise :class:`ManifestError` when the sidecar does not describe the
    archived object (``size`` bytes, S3 Etag ``s3_etag`` unquoted). An
    object that records the SLO's Swift Etag (``slo_etag_meta``: the sync
    daemon re-chunked it, or it went to a store without multipart
    uploads) is checked by that Etag, whatever its parts."""
    if manifest.size != size:
        raise ManifestError(f'its segments add up to {manifest.size} bytes, '
                            f'the object has {size}')
    mpu = _MPU_ETAG.match(s3_etag or '')
    if mpu and manifest.restorable and not slo_etag_meta:
        # one part per segment: the parts' MD5s are the segment Etags
        parts = int(mpu.group(2))
        if parts != len(manifest.segments):
            raise ManifestError(f'{len(manifest.segments)} segments, the '
                                f'object has {parts} parts')
        expected = mpu_etag([seg.hash for seg in manifest.segments])
        if expected != s3_etag:
            raise ManifestError(f'its segments make the multipart Etag '
                                f'{expected}, the object has {s3_etag}')
    if slo_etag_meta and slo_etag_meta.strip('"') != manifest.etag:
        raise ManifestError(f'its SLO Etag is {manifest.etag}, the object '
                            f'says {slo_etag_meta}')


def raw_manifest(manifest):
    """The manifest as ``?multipart-manifest=get&format=raw`` shows it (and
    as a ``?multipart-manifest=put`` takes it): Swift's byte-exact
    format."""
    out = []
    for seg in manifest.segments:
        if seg.data is not None:
            out.append({'data': base64.b64encode(seg.data).decode('ascii')})
            continue
        entry = {'path': seg.name, 'size_bytes': seg.size, 'etag': seg.hash}
        if seg.range is not None:
            entry['range'] = seg.range
        out.append(entry)
    return json.dumps(out, sort_keys=True).encode('utf-8')


def put_manifest(entries):
    """The body of a ``?multipart-manifest=put`` for ``[(path, size, etag),
    ...]`` (paths ``/container/object``, native strings)."""
    return json.dumps([{'path': path, 'size_bytes': size, 'etag': etag}
                       for path, size, etag in entries]).encode('utf-8')


def part_range(segments, part_num):
    """``(first, last)`` byte offsets (inclusive) of part ``part_num``
    (1-based), or None when there is no such part."""
    if part_num < 1 or part_num > len(segments):
        return None
    first = sum(seg.length for seg in segments[:part_num - 1])
    return first, first + segments[part_num - 1].length - 1


def segment_size_for(size, wanted, max_file_size, max_segments):
    """The segment size to restore ``size`` bytes with: ``wanted`` (never
    more than ``max_file_size``), grown so that at most ``max_segments``
    segments are needed; None when no size fits both limits."""
    seg = min(wanted, max_file_size)
    if seg <= 0:
        return None
    needed = -(-size // max_segments)
    seg = max(seg, needed)
    return seg if seg <= max_file_size else None


# -- requests ------------------------------------------------------------

def is_marked_slo(s3_headers):
    """Does the archived object's user metadata say it is an SLO?"""
    value = s3_headers.get(shunt_headers.META_PREFIX + SLO_META)
    return value is not None and config_true_value(
        shunt_headers.decode_meta_value(value).strip())


def wants_manifest(req):
    return get_param(req, 'multipart-manifest') == 'get'


def manifest_response(req, object_headers, manifest):
    """The answer to ``?multipart-manifest=get`` (``&format=raw``) for an
    archived SLO, as Swift gives it for a local one."""
    headers = {k: v for k, v in object_headers.items()
               if k.lower() != 'x-manifest-etag'}
    if get_param(req, 'format') == 'raw':
        body = raw_manifest(manifest)
    else:
        body = manifest.body
        headers['Content-Type'] = MANIFEST_CONTENT_TYPE
    headers['Etag'] = hashlib.md5(body, usedforsecurity=False).hexdigest()
    headers['X-Static-Large-Object'] = 'True'
    return Response(request=req, headers=headers, body=body,
                    conditional_response=True)


def apply_part_number(req, headers, manifest):
    """For ``?part-number=N``: narrow the request to that segment (swob then
    answers 206 for it) and return None, or return the whole answer when
    Swift gives one of its own (400 for a bad number or a Range with it,
    416 past the last part, 206 to a HEAD). Adds ``X-Parts-Count``."""
    try:
        part_num = get_valid_part_num(req)
    except HTTPException as err:
        return err
    if part_num is None:
        return None
    segments = manifest.segments
    headers['X-Parts-Count'] = str(len(segments))
    size = manifest.size
    bounds = part_range(segments, part_num)
    if bounds is None:
        body = b'' if req.method == 'HEAD' else \
            b'The requested part number is not satisfiable'
        resp = HTTPRequestedRangeNotSatisfiable(
            request=req, headers=headers, body=body)
        resp.headers['Content-Range'] = 'bytes */%d' % size
        return resp
    first, last = bounds
    if req.method == 'HEAD':
        resp = Response(request=req, status=206, headers=headers)
        resp.headers['Content-Length'] = str(last - first + 1)
        resp.headers['Content-Range'] = 'bytes %d-%d/%d' % (first, last,
                                                             size)
        return resp
    req.range = 'bytes=%d-%d' % (first, last)
    return None


# -- the sidecar ---------------------------------------------------------

class LogOnce:
    """Remembers the last ``size`` keys logged, so that a condition of one
    object is logged once per worker, not on every request."""

    def __init__(self, size=1024):
        self.size = size
        self._seen = collections.OrderedDict()

    def __call__(self, key):
        """True the first time ``key`` is seen (recently)."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = True
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


log_once = LogOnce()


def _read_sidecar(body):
    try:
        data = body.read(MAX_SIDECAR_BYTES + 1)
    finally:
        body.close()
    return data


class SidecarCache:
    """Recently read sidecars (and their absence), per worker, so that the
    range requests of a client streaming an archived SLO do not each cost a
    second S3 request. Entries are keyed by the object's S3 Etag, size and
    ``Last-Modified`` (a changed object never meets an old entry) and live
    ``ttl`` seconds; at most ``max_bytes`` of sidecars are kept."""

    def __init__(self, ttl=60.0, max_bytes=8 * 1024 * 1024,
                 clock=time.monotonic):
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries = collections.OrderedDict()
        self._bytes = 0

    def get(self, key):
        """``(True, manifest or None)`` when known, else ``(False,
        None)``."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, manifest = entry
        if expires < self.clock():
            self._drop(key)
            return False, None
        self._entries.move_to_end(key)
        return True, manifest

    def put(self, key, manifest):
        if key in self._entries:
            self._drop(key)
        size = len(manifest.body) if manifest is not None else 0
        if size > self.max_bytes:
            return
        self._entries[key] = (self.clock() + self.ttl, manifest)
        self._bytes += size
        while self._bytes > self.max_bytes or len(self._entries) > 4096:
            self._drop(next(iter(self._entries)))

    def _drop(self, key):
        _, manifest = self._entries.pop(key)
        if manifest is not None:
            self._bytes -= len(manifest.body)

    def clear(self):
        self._entries.clear()
        self._bytes = 0


sidecars = SidecarCache()


def load_archived_manifest(remote, profile, obj, s3_headers, size, logger,
                           cache=None):
    """The valid sidecar manifest of an archived object that is marked as
    an SLO, or None (no sidecar, or one that does not fit the object:
    logged once). Remote failures other than a missing sidecar raise
    :class:`RemoteError`: the object's identity cannot be told without
    it."""
    cache = sidecars if cache is None else cache
    key = manifest_key(profile.account, profile.container, obj,
                       profile.custom_prefix)
    s3_etag = shunt_headers.bare_etag(s3_headers.get('etag'))
    cache_key = (profile.aws_endpoint, profile.aws_bucket, key, s3_etag,
                 size, s3_headers.get('last-modified'))
    known, manifest = cache.get(cache_key)
    if known:
        return manifest
    manifest = _load_sidecar(remote, profile, obj, key, s3_headers, size,
                             s3_etag, logger)
    cache.put(cache_key, manifest)
    return manifest


def _load_sidecar(remote, profile, obj, key, s3_headers, size, s3_etag,
                  logger):
    try:
        resp = remote.get_object(profile, key)
        body = _read_sidecar(resp['Body'])
    except RemoteError as err:
        if err.kind != 'not_found':
            raise
        if log_once(('absent', profile.aws_bucket, key, s3_etag)):
            logger.info('SLO %r (%s) has no manifest sidecar %r: serving '
                        'it as one object', obj, profile.describe(), key)
        return None
    except Exception as err:
        raise RemoteError('connection', str(err) or type(err).__name__)
    meta = shunt_headers.user_metadata(s3_headers)
    try:
        manifest = parse_manifest(body)
        check_object(manifest, size, s3_etag, meta.get(SLO_ETAG_META))
    except ManifestError as err:
        if log_once(('bad', profile.aws_bucket, key, s3_etag)):
            logger.warning('Ignoring the manifest sidecar %r of SLO %r (%s):'
                           ' %s', key, obj, profile.describe(), err)
        return None
    return manifest
