"""Rows found up to date by one listing of the bucket, not a HEAD each.

A pass that walks many rows it has no record of (the first walk of a
container after moving from 1space's daemon, a lost ``status_dir``, a DB
now on this node after a rebalance) would otherwise read every object and
HEAD its bucket copy, although nearly all are up to date. Before such a
pass (at least ``list_check_rows`` rows past those of its pointers
that have a row due now after them — in the steady state verification
waits for rows to age and few rows are new — and a listing request for
every ``LIST_COST`` = 20 rows at most, judged by the DB's object count)
the walker builds :class:`ListedRows` (``container_time`` counts from
after it, so a pass always walks rows): the DB's rows in name order
(SQLite orders names by their UTF-8 bytes, as S3 orders keys) are merged
with the listing of the container's key prefix, 1,000 keys a request, and
a row is *listed* when the bucket holds a copy that

* has the row's Etag (a plain MD5: SLOs, whose bucket Etag is another,
  are never listed) and size, and
* was written (``LastModified``, the store's clock) more than
  ``remote_clock_skew`` after the row's last change (PUT, POST or
  content-type update).

Such a copy holds the row's bytes and was written after its last change.
A remote Swift (``"protocol": "swift"``) lists its container the same way
(the object names, in the same order); where it keeps the X-Timestamp the
daemon sends (see :mod:`shunt.daemon.swift_transfer`), a copy's
``last_modified`` *is* the version it was written as, so a copy whose
``last_modified`` equals the row's last change (to Swift's 10 µs) is
listed too. There, 0-byte rows are never listed: a DLO manifest's row,
whose segments only the HEAD compares.
Only sync-mode (``retain_local: true``) profiles use it: the
row handler answers **noop** for a listed row without a request (see
:mod:`shunt.daemon.rows`); archive-mode rows still go through the HEAD
that guards the local delete. What a listing cannot show is the copy's
metadata: a listed copy could carry older metadata only if an upload of an
earlier version with the same bytes was still in flight
``remote_clock_skew`` after the row's change; ``list_check_rows = 0``
keeps a HEAD for every row.

Memory: one bit per ROWID between the lowest pointer and the DB's last
row at the pass start (125 KB per million rows); rows written later are
not listed (they are new).
"""

import binascii

from swift.common.utils import Timestamp, decode_timestamps

from shunt.core.layout import key_prefix

# DB rows read at a time in name order (as many as a listing page)
PAGE = 1000
# a listing request weighed as this many HEADs (it returns 1,000 keys,
# but is slower and its pages come one after the other)
LIST_COST = 20


def plain_md5(etag):
    """The row's Etag when it is a plain hex MD5 (no parameters)."""
    if not etag or len(etag) != 32:
        return None
    try:
        binascii.unhexlify(etag)
    except (binascii.Error, ValueError):
        return None
    return etag.lower()


def row_is_copied(row_etag, row_size, created_at, entry, skew,
                  native=False):
    """Is the listing ``entry`` (``ETag``, ``Size``, ``LastModified``) a
    copy of the row written after its last change? ``native``: a remote
    Swift's listing (a copy written as the row's last change, its
    X-Timestamp kept, is one too; 0-byte rows never are)."""
    etag = plain_md5(row_etag)
    if etag is None or entry.get('Size') != row_size:
        return False
    if native and not row_size:
        return False
    if (entry.get('ETag') or '').strip('"').lower() != etag:
        return False
    last_modified = entry.get('LastModified')
    if last_modified is None:
        return False
    changed = max(Timestamp(t) for t in decode_timestamps(created_at))
    written = last_modified.timestamp()
    if native and Timestamp(written).normal == changed.normal:
        return True
    return written > changed.timestamp + skew


class ListedRows:
    """ROWIDs in ``(low, high]`` whose row is up to date in the bucket by
    its listing (:func:`row_is_copied`); ``listed(rowid)``."""

    def __init__(self, low, high):
        self.low, self.high = low, high
        self._bits = bytearray((high - low) // 8 + 1)
        self.count = 0
        self.requests = 0

    def listed(self, rowid):
        if not self.low < rowid <= self.high:
            return False
        offset = rowid - self.low
        return bool(self._bits[offset >> 3] & (1 << (offset & 7)))

    def _mark(self, rowid):
        offset = rowid - self.low
        self._bits[offset >> 3] |= 1 << (offset & 7)
        self.count += 1

    def build(self, db_rows, listing, skew, native=False):
        """Merge ``db_rows`` (``(rowid, name, created_at, size, etag)``
        in name order) with ``listing`` (``(name, entry)`` in name
        order); ``native``: a remote Swift's (:func:`row_is_copied`)."""
        entries = iter(listing)
        current = next(entries, None)
        for rowid, name, created_at, size, etag in db_rows:
            while current is not None and current[0] < name:
                current = next(entries, None)
            if current is None:
                break
            if current[0] == name and self.low < rowid <= self.high and \
                    row_is_copied(etag, size, created_at, current[1], skew,
                                  native):
                self._mark(rowid)
        return self


def db_rows_by_name(broker, page=PAGE):
    """The DB's object rows (not deleted) in name order, a page at a
    time: ``(rowid, name, created_at, size, etag)`` (rows still in its
    pending file are not: ``broker.get_info()`` moves them in)."""
    marker = ''
    while True:
        with broker.get() as conn:
            rows = conn.execute(
                'SELECT ROWID, name, created_at, size, etag FROM object '
                'WHERE deleted = 0 AND name > ? ORDER BY name LIMIT ?',
                (marker, page)).fetchall()
        if not rows:
            return
        yield from (tuple(row) for row in rows)
        marker = rows[-1][1]


class BucketListing:
    """The bucket copies of one container's objects, in name order:
    ``(name, entry)``; counts its requests in ``requests``."""

    def __init__(self, remote, profile):
        self.remote = remote
        self.profile = profile
        self.requests = 0

    def __iter__(self):
        prefix = key_prefix(self.profile.account, self.profile.container,
                            self.profile.custom_prefix)
        marker = ''
        while True:
            self.requests += 1
            page = self.remote.list_objects(self.profile, prefix, marker)
            contents = page.get('Contents') or []
            for entry in contents:
                yield entry['Key'][len(prefix):], entry
            if not page.get('IsTruncated') or not contents:
                return
            marker = contents[-1]['Key']


def worth_listing(rows_ahead, object_count, min_rows):
    """Is one listing of the bucket much cheaper than a HEAD per row? At
    least ``min_rows`` rows to walk (0: never), and a listing request
    (1,000 keys) for every ``LIST_COST`` rows at most."""
    pages = -(-object_count // PAGE)
    return bool(min_rows) and rows_ahead >= min_rows and \
        pages * LIST_COST <= rows_ahead


def build(broker, remote, profile, low, high, skew):
    """:class:`ListedRows` of ``(low, high]`` for this DB and profile."""
    listing = BucketListing(remote, profile)
    listed = ListedRows(low, high).build(db_rows_by_name(broker), listing,
                                         skew, profile.protocol == 'swift')
    listed.requests = listing.requests
    return listed
