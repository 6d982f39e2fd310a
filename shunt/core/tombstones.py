"""Deletes of archived objects, recorded in Swift's own tombstones.

A DELETE that passes through the shunt is given an ``X-Timestamp`` whose
offset (the part after ``_`` in Swift's internal timestamp form) carries a
mark and a 32-bit digest of the archived copy's Etag. Swift stores it in
the tombstone, and the proxy's 404 for the name carries it back as
``X-Backend-Timestamp`` to the middlewares right of ``gatekeeper``.

Which archived copies a delete hides
------------------------------------
The delete's time is the proxies' clock; an archived copy's
``Last-Modified`` is the S3 store's clock, at the store's precision:
whole seconds truncated (moto) or rounded up (Swift's ``s3api``),
milliseconds in listings (AWS, Ceph RGW, MinIO). Neither clock is trusted
over the other. With ``skew`` the largest clock difference allowed
between the store and the proxies (the filter option
``remote_clock_skew``, default 5 s) and one more second for the
precision, the *window of doubt* is ``skew + 1`` seconds either side of
the delete. An archived copy is

* hidden when its ``Last-Modified`` is older than the window (archived
  before the delete, whatever the clocks and precision);
* visible when it is newer than the window (archived again after the
  delete);
* inside the window, decided by content, never by which clock is ahead:
  hidden if it is the copy the delete saw (same Etag digest), visible if
  other content was archived since, hidden if the delete could not know
  the Etag.

An archive that records the object's Swift timestamp
(:data:`shunt.core.headers.TIMESTAMP_META`, written by this project's sync
daemon) is decided on Swift's own clock alone: hidden exactly when the
archived version is older than the delete. Limits: a copy with the same
content archived again (without the metadata) within the window stays
hidden, a delete more than ``skew`` seconds off the store's clock may
decide wrongly, and a copy uploaded long after a delete but carrying an
older version (an archiver racing the delete) is hidden from reads but,
when it landed later than the window, still listed (listings carry no
metadata; see :mod:`shunt.proxy.listing`).

Tombstones without the mark (an archiver deleting the local copy after
uploading it, the object expirer, a DELETE sent with the bypass header)
never hide anything, so archiving keeps working as before. No second store
is kept anywhere: the tombstone *is* the record, and it is replicated,
reclaimed and overwritten (by a later PUT) by Swift as usual.

Everything here is pure.
"""

import zlib

from swift.common.utils import Timestamp

from shunt.core.headers import archived_swift_timestamp, parse_http_date

MARK = 0xC5A0
# the sync daemon's archive deletes (see :func:`archive_timestamp`)
ARCHIVER_MARK = 0xA5C1
_MARK_SHIFT = 48
_HAS_ETAG = 1 << 32
_DIGEST_MASK = 0xFFFFFFFF
# default of the remote_clock_skew option: seconds the store's clock may
# run apart from the proxies'
DEFAULT_CLOCK_SKEW = 5.0
# a store's Last-Modified is within this of the upload's instant on its own
# clock (whole seconds, truncated or rounded up; or milliseconds)
PRECISION = 1.0


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
    """A Timestamp from a header value (None for absent or unreadable);
    a Timestamp is taken as it is (even ``Timestamp(0)``)."""
    if isinstance(value, Timestamp):
        return value
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


def window(skew=DEFAULT_CLOCK_SKEW):
    """Seconds either side of a delete where an archived copy's time
    cannot tell whether it was archived before or after the delete."""
    return max(0.0, float(skew)) + PRECISION


def may_hide(hidden_at, archived_time, skew=DEFAULT_CLOCK_SKEW):
    """Whether an archived copy last modified at ``archived_time`` (store
    clock, epoch seconds) can be hidden by deletes made until ``hidden_at``
    (a Timestamp): the archived rows a listing checks tombstones for."""
    if hidden_at is None:
        return False
    if archived_time is None:
        return True
    return archived_time <= hidden_at.timestamp + window(skew)


def in_doubt(tombstone, archived_time, skew=DEFAULT_CLOCK_SKEW):
    """Whether a marked tombstone's decision about an archived copy last
    modified at ``archived_time`` rests on content (inside the window of
    doubt), where the archive's own Swift timestamp would decide it."""
    ts = parse(tombstone)
    if not is_marked(ts):
        return False
    return archived_time is None or \
        abs(archived_time - ts.timestamp) <= window(skew)


def hides(tombstone, archived_time, archived_etag, swift_timestamp=None,
          skew=DEFAULT_CLOCK_SKEW):
    """Whether a tombstone (its ``X-Backend-Timestamp`` value) hides an
    archived copy last modified at ``archived_time`` (epoch seconds on the
    store's clock, at its precision; None: unknown) with ``archived_etag``.
    ``swift_timestamp`` is the archived version's own Swift timestamp when
    the archive records it (see the module docstring for the rule)."""
    ts = parse(tombstone)
    if not is_marked(ts):
        return False
    version = parse(swift_timestamp)
    if version is not None:
        # Swift's own clock on both sides
        return version < ts
    if archived_time is not None:
        margin = window(skew)
        if archived_time < ts.timestamp - margin:
            return True
        if archived_time > ts.timestamp + margin:
            return False
    # inside the window of doubt: the content decides
    if not ts.offset & _HAS_ETAG:
        return True
    return ts.offset & _DIGEST_MASK == etag_digest(archived_etag)


def archived_visible(tombstone, s3_headers, now, skew=DEFAULT_CLOCK_SKEW):
    """Whether an archived copy (its S3 response headers) is part of the
    Swift namespace: not hidden by a tombstone, not past the expiry time
    the archiver kept in ``x-amz-meta-x-delete-at``."""
    modified = parse_http_date(s3_headers.get('last-modified'))
    if hides(tombstone, modified, s3_headers.get('etag'),
             archived_swift_timestamp(s3_headers), skew):
        return False
    delete_at = s3_headers.get('x-amz-meta-x-delete-at', '').strip()
    return not (delete_at.isdigit() and int(delete_at) <= now)
