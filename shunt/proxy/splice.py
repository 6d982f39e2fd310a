"""Spliced container listings: the pure part (no I/O of its own).

A listing of a mapped container must be exactly what Swift would list if
every archived object were local. Swift's container server
(``ContainerBroker.list_objects_iter``) applies the parameters like this,
in ascending terms (``reverse`` swaps ``marker`` and ``end_marker`` and
walks down):

* a name is considered when ``lower < name < upper`` and it starts with the
  prefix, where ``lower``/``upper`` are ``marker``/``end_marker`` (or
  ``end_marker``/``marker`` with ``reverse``);
* with a ``delimiter``, a name holding the delimiter after the prefix is
  folded into the subdir ``name[:i + len(delimiter)]``; a subdir equal to
  ``lower`` is never listed (it is where the previous page ended);
* ``limit`` rows are listed, from the top when ``reverse`` is set.

Without ``path``, every name maps to its row independently of the other
names, so the listing of the union is the sorted merge of the listings of
each store (a key listed by both appears once). Swift lists the local
store; :class:`RemoteScan` lists the bucket with the same rules and
:func:`merge_listing` merges. An S3 ``CommonPrefixes`` entry says only that
some key below it is past the ``Marker``; whether a subdir whose group
holds ``lower`` or ``upper`` has a name inside the range is asked with one
small extra listing (it happens only when a bound is itself inside a
subdir, never while paging with the last row as ``marker``).

``path`` is different: Swift skips a subdirectory's contents and, as a
side effect, hides the name ``X0`` that follows a directory ``X/`` with
contents (and, in reverse, the directory object ``X/`` itself), so rows
of one store depend on names of the other. With ``path`` both stores are
scanned for raw names (jumping over subdirectory contents as Swift does)
and :func:`path_listing` applies Swift's rules to the union.

Costs: a forward listing reads S3 pages lazily, only as far as the page
needs. S3 cannot list downwards, so a ``reverse`` listing reads every
archived key between its lower bound and ``marker`` (one ``ListObjects``
per 1,000 keys), keeping only the last ``limit`` rows in memory; the lower
bound is ``end_marker`` when given, raised to the lowest local row when the
local store alone fills the page. A ``path`` listing in reverse reads both
stores over the whole range the same way.
"""

import collections
import datetime

from swift.common.constraints import CONTAINER_LISTING_LIMIT
from swift.common.request_helpers import validate_container_params
from swift.common.utils import config_true_value

from shunt.core.layout import MANIFEST_DIR

#: ``content_location`` entry naming the local store
LOCAL_LOCATION = 'swift'
#: the most keys one ListObjects page returns
S3_PAGE_KEYS = 1000
#: keys asked for when checking whether a subdir has a name in range
PROBE_KEYS = 10
#: S3 listings carry no content type: archived rows say this
REMOTE_CONTENT_TYPE = 'application/octet-stream'
#: Swift's ``last_modified`` format in listings (always microseconds, UTC)
LISTING_TIME_FORMAT = '%Y-%m-%dT%H:%M:%S.%f'
#: with a ``custom_prefix``, SLO manifest sidecars live below this
RESERVED_DIR = MANIFEST_DIR + '/'
MAX_CHAR = '\U0010ffff'

OBJECT = 0
DEEP = 1


class RemoteListingStalled(Exception):
    """The bucket answered a truncated page that did not move forward."""


def just_below(name):
    """A string below ``name`` and above every name below it that does not
    carry four U+10FFFF characters: an exclusive S3 ``Marker`` that lists
    ``name`` itself and (practically) nothing smaller."""
    head, last = name[:-1], ord(name[-1])
    if last == 0:
        return head
    last -= 1
    if 0xD800 <= last <= 0xDFFF:
        last = 0xD7FF
    return head + chr(last) + MAX_CHAR * 4


RESERVED_SKIP = just_below(MANIFEST_DIR + chr(ord('/') + 1))


# -- parameters ---------------------------------------------------------

class ListingParams:
    """The listing parameters of one request, as Swift reads them."""

    __slots__ = ('limit', 'marker', 'end_marker', 'prefix', 'delimiter',
                 'path', 'reverse')

    def __init__(self, limit=CONTAINER_LISTING_LIMIT, marker='',
                 end_marker='', prefix='', delimiter='', path=None,
                 reverse=False):
        self.limit = limit
        self.marker = marker or ''
        self.end_marker = end_marker or ''
        self.prefix = prefix or ''
        self.delimiter = delimiter or ''
        self.path = path
        self.reverse = bool(reverse)

    def __repr__(self):
        return 'ListingParams(%s)' % ', '.join(
            '%s=%r' % (k, getattr(self, k)) for k in self.__slots__)

    @property
    def base(self):
        """The prefix every listed name has (``path`` overrides
        ``prefix``)."""
        if self.path is None:
            return self.prefix
        return self.path.rstrip('/') + '/' if self.path else ''

    @property
    def lower(self):
        """Exclusive lower bound of the names considered ('' for none)."""
        return self.end_marker if self.reverse else self.marker

    @property
    def upper(self):
        """Exclusive upper bound of the names considered ('' for none)."""
        return self.marker if self.reverse else self.end_marker


def parse_params(req):
    """The listing parameters of a container GET.

    Validation is Swift's own: a value that is not UTF-8 raises
    ``400 Bad Request`` (``"marker" parameter not valid UTF-8``), a
    ``limit`` above 10000 raises ``412 Precondition Failed`` (``Maximum
    limit is 10000``); a ``limit`` that is not a number means the default
    (10000), ``reverse`` is true for Swift's true values only.
    """
    params = validate_container_params(req)
    return ListingParams(
        limit=params['limit'],
        marker=params.get('marker'),
        end_marker=params.get('end_marker'),
        prefix=params.get('prefix'),
        delimiter=params.get('delimiter'),
        path=params.get('path'),
        reverse=config_true_value(params.get('reverse')))


def group_of(name, base, delimiter):
    """The subdir ``name`` folds into, or None."""
    if not delimiter or not name.startswith(base):
        return None
    end = name.find(delimiter, len(base))
    if end < 0:
        return None
    return name[:end + len(delimiter)]


def row_key(row):
    return row['name'] if 'name' in row else row['subdir']


# -- S3 rows --------------------------------------------------------------

def remote_location(label, bucket, key_prefix):
    """The ``content_location`` string of archived rows."""
    if key_prefix:
        return '%s;%s;%s' % (label, bucket, key_prefix)
    return '%s;%s' % (label, bucket)


def listing_time(value):
    """An S3 ``LastModified`` as Swift's listing ``last_modified``."""
    if value is None:
        return ''
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.strftime(LISTING_TIME_FORMAT)


# set on a ListObjects ``Contents`` entry whose archived copy a delete hid
# (see shunt.proxy.listing): it gives no row, but still moves the page on
HIDDEN = 'CloudShuntHidden'


def object_row(name, item, location):
    """A listing row for one S3 ``Contents`` entry named ``name``. A
    remote Swift's entries also carry the row's ``ContentType`` and, for
    an SLO, its ``SloEtag``: the row then has them as a local one
    does."""
    row = {
        'bytes': int(item.get('Size') or 0),
        'hash': str(item.get('ETag') or '').strip('"'),
        'name': name,
        'content_type': item.get('ContentType') or REMOTE_CONTENT_TYPE,
        'last_modified': listing_time(item.get('LastModified')),
    }
    if item.get('SloEtag'):
        row['slo_etag'] = '"%s"' % str(item['SloEtag']).strip('"')
    row['content_location'] = [location]
    return row


def subdir_row(name, location):
    return {'subdir': name, 'content_location': [location]}


def page_rows(page, key_prefix, location):
    """The rows of one ListObjects page in ascending order, the prefix
    stripped from keys (botocore has already URL-decoded them). Keys not
    below the prefix, and the prefix itself, give no row."""
    entries = []
    for item in page.get('Contents') or ():
        key = item.get('Key') or ''
        if item.get(HIDDEN):
            continue
        if key.startswith(key_prefix) and len(key) > len(key_prefix):
            name = key[len(key_prefix):]
            entries.append((name, object_row(name, item, location)))
    for item in page.get('CommonPrefixes') or ():
        key = item.get('Prefix') or ''
        if key.startswith(key_prefix) and len(key) > len(key_prefix):
            name = key[len(key_prefix):]
            entries.append((name, subdir_row(name, location)))
    entries.sort(key=lambda entry: entry[0])
    return entries


def page_end(page):
    """Where the next page of a truncated listing starts (a full key; None
    when the page is the last one). AWS truncates Contents and
    CommonPrefixes together; some clones (moto) return every CommonPrefix
    on every page, so the last Contents key is the safe position whenever
    there is one. After a CommonPrefix the next page starts past all its
    keys (they are all folded into it)."""
    if not page.get('IsTruncated'):
        return None
    contents = page.get('Contents') or ()
    if contents:
        return contents[-1].get('Key') or ''
    prefixes = page.get('CommonPrefixes') or ()
    if prefixes:
        return (prefixes[-1].get('Prefix') or '') + MAX_CHAR * 4
    return None


# -- the archived side ----------------------------------------------------

# never in an object name: Swift refuses names with it
NUL = '\x00'


class RemoteScan:
    """The archived side of a listing, in ascending order, exactly as Swift
    would list the bucket's objects alone.

    ``fetch(prefix=, marker=, delimiter=, max_keys=)`` returns one S3
    ListObjects (v1) response dict (full keys; '' means no marker or
    delimiter). ``reserved`` hides the ``.manifests/`` sidecars of a
    ``custom_prefix`` layout. With ``path`` the scan yields raw names (no
    delimiter) for :func:`path_entries`.

    ``floor`` (set before iterating) drops rows below it; ``skip_to``
    drops names up to a name and lets the next page start past it.
    """

    def __init__(self, fetch, params, key_prefix, location, reserved=False,
                 page_keys=S3_PAGE_KEYS):
        self.fetch = fetch
        self.params = params
        self.key_prefix = key_prefix
        self.location = location
        self.reserved = reserved
        self.raw = params.path is not None
        self.delimiter = '' if self.raw else params.delimiter
        if NUL in self.delimiter:
            # no name holds one (Swift refuses them): it splits nothing,
            # and some stores fail on it
            self.delimiter = ''
        self.base = params.base
        self.lower = params.lower
        self.upper = params.upper
        self.floor = ''
        self.skip = ''
        self.page_keys = page_keys
        if self.raw or params.reverse:
            self.first_max_keys = page_keys
        else:
            self.first_max_keys = max(1, min(params.limit, page_keys))

    def skip_to(self, name):
        self.skip = max(self.skip, name)

    def is_empty(self):
        """True when no archived name can be in range (no call needed)."""
        if self.params.limit <= 0:
            return True
        if self.reserved and self.base.startswith(RESERVED_DIR):
            return True
        if NUL in self.base:
            return True  # no name holds one
        upper = self.upper
        return bool(upper) and (upper <= self.lower or upper <= self.base)

    def request(self, marker, max_keys, prefix=None, delimiter=None):
        """Arguments of one ``fetch``; ``marker`` is a full key."""
        return {
            'prefix': self.key_prefix + (self.base if prefix is None
                                         else prefix),
            'marker': marker,
            'delimiter': self.delimiter if delimiter is None else delimiter,
            'max_keys': max_keys,
        }

    def _start(self):
        return self.key_prefix + self.lower if self.lower else ''

    def first_request(self):
        """The first page's request (to fetch it ahead), or None."""
        if self.is_empty():
            return None
        return self.request(self._start(), self.first_max_keys)

    def _is_reserved(self, name):
        return self.reserved and name.startswith(RESERVED_DIR)

    def rows(self):
        if self.is_empty():
            return
        kp = self.key_prefix
        lower, upper = self.lower, self.upper
        lower_group = group_of(lower, self.base, self.delimiter)
        upper_group = group_of(upper, self.base, self.delimiter)
        resolved = set()
        last = lower
        marker = self._start()
        max_keys = self.first_max_keys
        while True:
            page = self.fetch(**self.request(marker, max_keys))
            max_keys = self.page_keys
            end = page_end(page)
            for name, row in page_rows(page, kp, self.location):
                if end is not None and kp + name > end:
                    break  # not complete on this page: comes again
                if upper and name >= upper:
                    return
                if name < self.floor or name <= self.skip:
                    continue
                if 'subdir' in row:
                    if name in resolved or name == lower or \
                            self._is_reserved(name):
                        continue
                    if name in (lower_group, upper_group) or (
                            self.reserved and RESERVED_DIR.startswith(name)):
                        # its names may all be out of range, or sidecars
                        resolved.add(name)
                        if self._group_has_name(name):
                            last = max(last, name)
                            yield row
                        continue
                if name <= last:
                    continue
                if self._is_reserved(name):
                    self.skip_to(RESERVED_SKIP)
                    continue
                last = name
                yield row
            if end is None or (upper and end >= kp + upper):
                return
            next_marker = max(end, kp + self.skip)
            if self.floor:
                next_marker = max(next_marker, kp + just_below(self.floor))
            if next_marker <= marker:
                raise RemoteListingStalled(
                    'a truncated page ended at %r, not past %r' %
                    (end, marker))
            marker = next_marker

    def _group_has_name(self, group):
        """Whether some archived name below ``group`` (not a sidecar) is
        strictly between the bounds."""
        kp = self.key_prefix
        marker = self._start()
        while True:
            page = self.fetch(**self.request(marker, PROBE_KEYS,
                                             prefix=group, delimiter=''))
            contents = page.get('Contents') or ()
            next_marker = ''
            for item in contents:
                key = item.get('Key') or ''
                name = key[len(kp):]
                next_marker = max(next_marker, key)
                if not key.startswith(kp) or name <= self.lower or \
                        item.get(HIDDEN):
                    continue
                if self.upper and name >= self.upper:
                    return False
                if self._is_reserved(name):
                    next_marker = max(next_marker, kp + RESERVED_SKIP)
                    continue
                return True
            if not page.get('IsTruncated') or not contents:
                return False
            if next_marker <= marker:
                raise RemoteListingStalled(
                    'a truncated page did not move past %r' % marker)
            marker = next_marker


class NativeScan:
    """The archived side of a listing on a remote Swift cluster, which
    applies ``marker``, ``end_marker``, ``prefix``, ``delimiter`` and
    ``reverse`` exactly as the local one does: its rows come in listing
    order (descending for ``reverse``), a page at a time, each asked with
    the request's own parameters and the last row as ``marker``. No probes,
    and a ``reverse`` listing reads only the pages it shows.

    ``fetch`` is :class:`RemoteScan`'s, plus ``end_marker`` and
    ``reverse``. Names are object names (no key prefix)."""

    def __init__(self, fetch, params, location, page_keys=S3_PAGE_KEYS):
        self.fetch = fetch
        self.params = params
        self.location = location
        self.page_keys = page_keys
        self.descending = params.reverse
        self.first_max_keys = max(1, min(params.limit, page_keys))

    def is_empty(self):
        return self.params.limit <= 0

    def request(self, marker, max_keys):
        return {'prefix': self.params.prefix, 'marker': marker,
                'delimiter': self.params.delimiter, 'max_keys': max_keys,
                'end_marker': self.params.end_marker,
                'reverse': self.params.reverse}

    def first_request(self):
        if self.is_empty():
            return None
        return self.request(self.params.marker, self.first_max_keys)

    def rows(self):
        if self.is_empty():
            return
        marker = self.params.marker
        max_keys = self.first_max_keys
        while True:
            page = self.fetch(**self.request(marker, max_keys))
            max_keys = self.page_keys
            entries = page_rows(page, '', self.location)
            if self.descending:
                entries.reverse()
            for _name, row in entries:
                yield row
            if not page.get('IsTruncated'):
                return
            next_marker = page.get('NextMarker') or ''
            if not next_marker or next_marker == marker:
                raise RemoteListingStalled(
                    'a truncated page did not move past %r' % marker)
            marker = next_marker


def last_rows(rows, limit):
    """The last ``limit`` rows of an ascending stream, highest first
    (memory: ``limit`` rows)."""
    if limit <= 0:
        return []
    return list(reversed(collections.deque(rows, maxlen=limit)))


# -- the local side of a path listing ------------------------------------

class LocalScan:
    """Raw local names in ascending order for a ``path`` listing, paged
    through Swift's own listing (``prefix``, ``marker``, ``end_marker``,
    no delimiter). ``fetch_page(query)`` returns the rows of one page;
    ``first_page`` may hold the first page, fetched already."""

    def __init__(self, fetch_page, params, page_size=None):
        self.fetch_page = fetch_page
        self.params = params
        self.page_size = page_size or min(
            CONTAINER_LISTING_LIMIT, max(2 * params.limit, 1000))
        self.first_page = None
        self.skip = ''

    def skip_to(self, name):
        self.skip = max(self.skip, name)

    def query(self, marker):
        query = {'format': 'json', 'limit': str(self.page_size)}
        if self.params.base:
            query['prefix'] = self.params.base
        if marker:
            query['marker'] = marker
        if self.params.upper:
            query['end_marker'] = self.params.upper
        return query

    def first_query(self):
        return self.query(self.params.lower)

    def rows(self):
        marker = self.params.lower
        page = self.first_page
        if page is None:
            page = self.fetch_page(self.first_query())
        while True:
            for row in page:
                if row.get('name', '') > self.skip:
                    yield row
            if len(page) < self.page_size:
                return
            next_marker = max(page[-1].get('name', ''), self.skip)
            if next_marker <= marker:
                return
            marker = next_marker
            page = self.fetch_page(self.query(marker))


# -- merging -------------------------------------------------------------

def combine(local, remote):
    """One row for a key listed by one store or both: the local row wins
    and names both places."""
    if remote is None:
        return local
    if local is None:
        return remote
    row = dict(local)
    row['content_location'] = list(remote['content_location']) + [
        LOCAL_LOCATION]
    return row


_END = object()


def merge_pairs(left, right, key, descending=False):
    """Merge two sorted streams, pairing items of equal key: yields
    ``(left_item, right_item)`` with None for a missing side. Lazy: an
    item is read only when it is needed."""
    left, right = iter(left), iter(right)
    a, b = next(left, _END), next(right, _END)
    while a is not _END or b is not _END:
        if b is _END:
            order = -1
        elif a is _END:
            order = 1
        else:
            ka, kb = key(a), key(b)
            order = (ka > kb) - (ka < kb)
            if descending:
                order = -order
        if order < 0:
            yield a, None
            a = next(left, _END)
        elif order > 0:
            yield None, b
            b = next(right, _END)
        else:
            yield a, b
            a, b = next(left, _END), next(right, _END)


def merge_listing(local_rows, remote_rows, limit, descending=False):
    """The spliced page: both row streams in listing order (ascending, or
    descending for ``reverse``), each already filtered by the parameters;
    at most ``limit`` rows."""
    rows = []
    if limit <= 0:
        return rows
    for local, remote in merge_pairs(local_rows, remote_rows, row_key,
                                     descending):
        rows.append(combine(local, remote))
        if len(rows) >= limit:
            break
    return rows


def path_entries(rows, base, reverse=False, skip_to=None):
    """What a ``path`` listing needs from one store's raw names (ascending,
    in range, all starting with ``base``): ``(OBJECT, name, row)`` for
    names directly below ``base`` (including directory objects ``X/``),
    and ``(DEEP, 'X/', None)`` once for each subdirectory ``X/`` that has
    names below it. The subdirectory's contents are skipped; ``skip_to``
    (optional) lets the store jump over them."""
    group = None
    for row in rows:
        name = row['name']
        if group is not None and name.startswith(group):
            continue
        if name == base:
            continue
        end = name.find('/', len(base))
        if end < 0 or end == len(name) - 1:
            yield OBJECT, name, row
            continue
        group = name[:end + 1]
        yield DEEP, group, None
        if skip_to is not None:
            after = name[:end] + chr(ord('/') + 1)
            # forward, Swift jumps past "X0" itself: it is never listed
            skip_to(just_below(after) if reverse else after)


def _entry_key(entry):
    return entry[1], entry[0]


def path_listing(local_entries, remote_entries, params):
    """The spliced ``path`` listing from both stores' :func:`path_entries`
    (ascending). Swift's rules on the union: a directory ``X/`` with
    contents hides the name ``X0`` (forward) or the directory object
    ``X/`` (reverse)."""
    limit = params.limit
    if limit <= 0:
        return []
    out = collections.deque(maxlen=limit) if params.reverse else []
    hidden = None
    pending = None  # reverse: a directory object, until its contents show
    for local, remote in merge_pairs(local_entries, remote_entries,
                                     _entry_key):
        kind, key = (local or remote)[:2]
        if kind == DEEP:
            if params.reverse:
                if pending is not None and row_key(pending) == key:
                    pending = None
            else:
                hidden = key[:-1] + chr(ord('/') + 1)
            continue
        row = combine(local and local[2], remote and remote[2])
        if params.reverse:
            if pending is not None:
                out.append(pending)
            pending = row if key.endswith('/') else None
            if pending is None:
                out.append(row)
        elif key != hidden:
            out.append(row)
            if len(out) >= limit:
                break
    if pending is not None:
        out.append(pending)
    return list(reversed(out)) if params.reverse else out


def spliced_rows(params, local_rows, scan):
    """The spliced page (no ``path``): ``local_rows`` is Swift's answer to
    the request, ``scan`` the archived side (:class:`RemoteScan`)."""
    if getattr(scan, 'descending', None) is not None:
        # a remote Swift lists in the request's own order
        remote_rows = scan.rows()
    elif params.reverse:
        if local_rows and len(local_rows) >= params.limit:
            # the local rows fill the page: nothing below them can show
            scan.floor = row_key(local_rows[-1])
        remote_rows = last_rows(scan.rows(), params.limit)
    else:
        remote_rows = scan.rows()
    return merge_listing(local_rows, remote_rows, params.limit,
                         params.reverse)


def spliced_path_rows(params, local_scan, remote_scan=None):
    """The spliced page of a ``path`` listing from both stores' raw scans
    (:class:`LocalScan`, :class:`RemoteScan`); without ``remote_scan``, the
    local rows alone."""
    base, reverse = params.base, params.reverse
    remote = ()
    if remote_scan is not None:
        remote = path_entries(remote_scan.rows(), base, reverse,
                              remote_scan.skip_to)
    return path_listing(
        path_entries(local_scan.rows(), base, reverse, local_scan.skip_to),
        remote, params)
