"""Swift SLO manifests and their Etags, shared by the shunt and the daemon.

A static large object's manifest, as Swift's object server stores it (and as
the archive's sidecar holds it), is a JSON list of segments ``{"name":
"/<container>/<object>", "hash", "bytes", "content_type", "last_modified"}``
with optional ``range`` and ``sub_slo``, or inline ``{"data": <base64>}``
entries. :func:`parse_manifest` validates one; :func:`slo_etag` is Swift's
Etag of the large object and :func:`mpu_etag` the Etag S3 gives a multipart
upload of the same parts.

Everything here is pure: no I/O.
"""

import base64
import binascii
import dataclasses
import hashlib
import json
import re

from swift.common.utils import config_true_value

SLO_META = 'x-static-large-object'
# set by archivers that store an SLO as one plain object (Google Cloud
# Storage has no multipart uploads): the Swift Etag of the SLO
SLO_ETAG_META = 'swift-slo-etag'
# Swift's own limit on a manifest is 8 MiB (slo max_manifest_size); a
# sidecar many times larger is not a manifest Swift wrote
MAX_SIDECAR_BYTES = 32 * 1024 * 1024
MANIFEST_CONTENT_TYPE = 'application/json; charset=utf-8'
_HEX32 = re.compile(r'^[0-9a-f]{32}$')
_MPU_ETAG = re.compile(r'^([0-9a-f]{32})-(\d+)$')
_RANGE = re.compile(r'^(\d+)-(\d+)$')
_SWIFT_BYTES = re.compile(r';\s*swift_bytes=(\d+)')


class ManifestError(ValueError):
    """A sidecar is not a usable SLO manifest for the object."""


@dataclasses.dataclass(frozen=True)
class Segment:
    """One entry of a manifest.

    ``container``/``obj`` are native strings (``None`` for an inline data
    segment); ``length`` is the number of bytes the segment contributes to
    the large object.
    """
    container: str | None
    obj: str | None
    hash: str | None
    size: int | None
    length: int
    range: str | None = None
    sub_slo: bool = False
    data: bytes | None = None
    content_type: str | None = None

    @property
    def name(self):
        return None if self.container is None else \
            f'/{self.container}/{self.obj}'

    @property
    def plain(self):
        """A whole object used as a segment (what a restore can write)."""
        return self.data is None and self.range is None and not self.sub_slo

    def etag_part(self):
        """This segment's contribution to the SLO Etag, as Swift hashes
        it."""
        if self.data is not None:
            return hashlib.md5(self.data, usedforsecurity=False).hexdigest()
        if self.range:
            return '%s:%s;' % (self.hash, self.range)
        return self.hash


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A parsed sidecar: the segments and the sidecar's own bytes."""
    segments: tuple
    body: bytes

    @property
    def size(self):
        return sum(seg.length for seg in self.segments)

    @property
    def etag(self):
        return slo_etag(self.segments)

    @property
    def json_md5(self):
        return hashlib.md5(self.body, usedforsecurity=False).hexdigest()

    @property
    def restorable(self):
        return bool(self.segments) and all(s.plain for s in self.segments)

    def response_headers(self):
        """What a local SLO's GET/HEAD shows in place of the plain object's
        Etag."""
        return {'Etag': '"%s"' % self.etag,
                'X-Static-Large-Object': 'True',
                'X-Manifest-Etag': self.json_md5}


def _segment(index, entry):
    where = f'segment {index}'
    if not isinstance(entry, dict):
        raise ManifestError(f'{where}: not an object')
    if 'data' in entry:
        try:
            data = base64.b64decode(entry['data'], validate=True)
        except (TypeError, ValueError, binascii.Error):
            raise ManifestError(f'{where}: data is not base64')
        return Segment(None, None, None, None, len(data), data=data)
    name, etag, size = entry.get('name'), entry.get('hash'), \
        entry.get('bytes')
    if not isinstance(name, str) or not name.startswith('/') or \
            '/' not in name[1:] or name.startswith('//'):
        raise ManifestError(f'{where}: name {name!r} is not '
                            f'/container/object')
    container, obj = name[1:].split('/', 1)
    if not obj:
        raise ManifestError(f'{where}: name {name!r} has no object')
    if not isinstance(etag, str) or not _HEX32.match(etag.lower()):
        raise ManifestError(f'{where}: hash {etag!r} is not an MD5')
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestError(f'{where}: bytes {size!r} is not a size')
    content_type = entry.get('content_type')
    sub_slo = config_true_value(entry.get('sub_slo', False))
    length = size
    if sub_slo and isinstance(content_type, str):
        # Swift keeps a sub-SLO's manifest size in "bytes" and its content
        # size in the content type
        match = _SWIFT_BYTES.search(content_type)
        if match:
            length = int(match.group(1))
    seg_range = entry.get('range')
    if seg_range is not None:
        match = _RANGE.match(seg_range) if isinstance(seg_range, str) \
            else None
        if not match or int(match.group(1)) > int(match.group(2)) or \
                int(match.group(2)) >= length:
            raise ManifestError(f'{where}: bad range {seg_range!r}')
        length = int(match.group(2)) - int(match.group(1)) + 1
    return Segment(container, obj, etag.lower(), size, length,
                   range=seg_range, sub_slo=sub_slo,
                   content_type=content_type if isinstance(
                       content_type, str) else None)


def parse_manifest(body):
    """A :class:`Manifest` from a sidecar's bytes (Swift's stored manifest
    format); raises :class:`ManifestError`."""
    if len(body) > MAX_SIDECAR_BYTES:
        raise ManifestError(f'{len(body)} bytes, more than any manifest')
    try:
        entries = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise ManifestError(f'not JSON: {err}')
    if not isinstance(entries, list) or not entries:
        raise ManifestError('not a non-empty list of segments')
    return Manifest(tuple(_segment(i, e) for i, e in enumerate(entries)),
                    bytes(body))


def slo_etag(segments):
    """Swift's Etag of an SLO: the MD5 of its segments' Etag parts."""
    digest = hashlib.md5(usedforsecurity=False)
    for seg in segments:
        digest.update(seg.etag_part().encode('ascii'))
    return digest.hexdigest()


def mpu_etag(hashes):
    """The Etag S3 gives a multipart upload whose parts have these MD5s."""
    digest = hashlib.md5(usedforsecurity=False)
    for value in hashes:
        digest.update(binascii.unhexlify(value))
    return '%s-%d' % (digest.hexdigest(), len(hashes))


def fixed_segments(size, segment_size):
    """Lengths of the segments that split ``size`` bytes into pieces of
    ``segment_size`` (the last one shorter)."""
    if segment_size <= 0:
        raise ValueError('segment_size must be positive')
    full, rest = divmod(size, segment_size)
    return [segment_size] * full + ([rest] if rest else [])


