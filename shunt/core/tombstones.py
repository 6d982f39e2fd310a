"""Deletes of archived objects, recorded in Swift's own tombstones.

A DELETE that passes through the shunt is given an ``X-Timestamp`` whose
offset (the part after ``_`` in Swift's internal timestamp form) carries a
mark and a 32-bit digest of the archived copy's Etag. Swift stores it in
the tombstone, and the proxy's 404 for the name carries it back as
``X-Backend-Timestamp`` to the middlewares right of ``gatekeeper``. An
archived copy is hidden by such a tombstone when it is not newer:

* archived before the second of the delete: hidden;
* archived in the same second (S3 keeps whole seconds): hidden if it is the
  copy the delete saw (same Etag digest), visible if it was re-archived
  with other content;
* archived later: visible again (a re-archived copy).

Tombstones without the mark (an archiver deleting the local copy after
uploading it, the object expirer, a DELETE sent with the bypass header)
never hide anything, so archiving keeps working as before. No second store
is kept anywhere: the tombstone *is* the record, and it is replicated,
reclaimed and overwritten (by a later PUT) by Swift as usual.

Everything here is pure.
"""

import math
import zlib

from swift.common.utils import Timestamp

from shunt.core.headers import parse_http_date

MARK = 0xC5A0
# the sync daemon's archive deletes (see :func:`archive_timestamp`)
ARCHIVER_MARK = 0xA5C1
_MARK_SHIFT = 48
_HAS_ETAG = 1 << 32
_DIGEST_MASK = 0xFFFFFFFF


def etag_digest(etag):
    return zlib.crc32((etag or '').strip('"').encode('ascii', 'replace'))


def delete_timestamp(when, archived_etag=None):
    """The marked ``Timestamp`` for a DELETE at ``when`` (a Timestamp or a
    float) that hides the archived copy with ``archived_etag`` (``''``:
    there was none; None: unknown, so any copy of that second is hidden)."""
    offset = MARK << _MARK_SHIFT
    # '' records that nothing was archived; None that it is unknown
    if archived_etag is not None:
        offset |= _HAS_ETAG | etag_digest(archived_etag)
    return Timestamp(Timestamp(when).timestamp, offset=offset)


def parse(value):
    try:
        return Timestamp(value) if value else None
    except (ValueError, OverflowError, TypeError):
        return None


def is_marked(ts):
    return ts is not None and ts.offset >> _MARK_SHIFT == MARK


def archive_timestamp(version):
    """The ``X-Timestamp`` of the sync daemon's DELETE of the local copy
    of ``version`` (the archived object's Timestamp) once it is archived:
    newer than that version by offset only, so it loses to any later PUT
    or POST (the object server answers 409), and marked so that neither
    the shunt (it hides nothing) nor the daemon (it is not a user's delete
    to propagate) takes it for a client's delete."""
    version = Timestamp(version)
    low = (version.offset & ((1 << _MARK_SHIFT) - 1)) + 1
    return Timestamp(version.timestamp,
                     offset=(ARCHIVER_MARK << _MARK_SHIFT) | low)


def is_archiver_tombstone(ts):
    """Was this tombstone written by the sync daemon after archiving?"""
    ts = parse(ts) if not isinstance(ts, Timestamp) else ts
    return ts is not None and ts.offset >> _MARK_SHIFT == ARCHIVER_MARK


def hides(tombstone, archived_time, archived_etag):
    """Whether a tombstone (its ``X-Backend-Timestamp`` value) hides an
    archived copy last modified at ``archived_time`` (epoch seconds)."""
    ts = parse(tombstone)
    if not is_marked(ts) or archived_time is None:
        return False
    deleted_second = math.floor(ts.timestamp)
    if archived_time < deleted_second:
        return True
    if archived_time > ts.timestamp:
        return False
    if not ts.offset & _HAS_ETAG:
        return True
    return ts.offset & _DIGEST_MASK == etag_digest(archived_etag)


def archived_visible(tombstone, s3_headers, now):
    """Whether an archived copy (its S3 response headers) is part of the
    Swift namespace: not hidden by a tombstone, not past the expiry time
    the archiver kept in ``x-amz-meta-x-delete-at``."""
    modified = parse_http_date(s3_headers.get('last-modified'))
    if hides(tombstone, modified, s3_headers.get('etag')):
        return False
    delete_at = s3_headers.get('x-amz-meta-x-delete-at', '').strip()
    return not (delete_at.isdigit() and int(delete_at) <= now)
