"""The sync daemon archiving into a remote Swift cluster, against
python-swiftclient uploading the same bytes to that cluster in the same
run (issue 14: ratio >= 0.85).

One all-in-one cluster (one container node) whose archive is the second,
independent Swift cluster (backend ``swift``); the daemon runs ``--once``:

* **large objects**: ``--large-count`` objects of ``--large-mib`` MiB
  (default 3 x 64 MiB) archived with ``retain_local: false`` — the daemon
  reads each from the local cluster, PUTs it to the remote one with its
  Etag (checked there: the answer verifies it) and deletes the local copy
  — against ``swiftclient.Connection.put_object`` of the same bytes (from
  memory, with the Etag) into the same remote cluster, at the same
  concurrency. Ratio of MB/s;
* **small objects** (``--count``, default 0: off): 4 KiB objects the same
  way, objects/s, written into a container the daemon walked already (as
  :mod:`tests.bench.bench_sync`'s: its rows are new to it, so each is PUT
  with ``If-None-Match: *``, no HEAD first).

A daemon pass's time counts from its start to its exit, less the time of a
pass with nothing to do (process start, rings, one container), as in
:mod:`tests.bench.bench_sync`; so are its ``cpu s`` and ``machine bound``
lines, the endpoint there being the remote cluster's processes (``remote
swift``: proxy, account, container, object servers, memcached; the
busiest of them taken as bound to one core). Run::

    python tests/bench/bench_swift_archive.py [--quick] [--large-mib M]
        [--large-count N] [--rounds N] [--count N] [--link RATE]
        [--json PATH]

``--rounds N`` measures the large objects' figure N times (a daemon pass
then python-swiftclient's uploads, each round into new containers) and
adds a row of the medians.

``--link RATE`` (tc syntax: ``1gbit``) puts the remote cluster's proxy
port behind a link of that bandwidth each way
(:mod:`tests.bench.port_link`), as across a network between two
clusters: the daemon's uploads and python-swiftclient's cross it alike.

(not part of the test run; ``--quick``: 2 x 16 MiB.)
"""

import argparse
import concurrent.futures
import contextlib
import hashlib
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from shunt.tools.aio_remote import PROCS  # noqa: E402
from tests.bench.bench_sync import (  # noqa: E402
    CONCURRENCY,
    SMALL_SIZE,
    SyncBench,
    finish,
)
from tests.bench.common import MiB, Row, median, spread  # noqa: E402
from tests.bench.port_link import PortLink, unavailable  # noqa: E402

TARGET = 0.85
SMALL_TARGET = 0.8


class SwiftArchiveBench(SyncBench):
    """:class:`SyncBench` with a remote Swift as the archive and
    python-swiftclient as the direct upload."""

    def __init__(self, args):
        super().__init__(args, s3_backend='swift')

    def start(self):
        self.aio.start()
        url, _ = self.aio.token()
        self.account = urllib.parse.urlsplit(url).path.split('/')[2]
        self.conn = self.aio.swift_conn(retries=2)
        self.remote = self.aio.remote

    def archive_profile(self, container):
        # archive mode always (bench_sync's own options are not ours)
        return self.aio.profile(self.account, container, retain_local=False)

    DIRECT, DIRECT_KEY = 'python-swiftclient', 'swiftclient_s'
    ENDPOINT = 'remote swift'

    def endpoint_procs(self):
        return PROCS

    def direct_puts(self, container, count, body):
        """The :class:`CpuMeter` of python-swiftclient putting ``count``
        objects of ``body`` (with their Etag) into the remote
        ``container``, CONCURRENCY at a time, one connection per thread
        (reused)."""
        etag = hashlib.md5(body).hexdigest()
        remote = self.remote
        remote.create_container(container)

        def put(i):
            # remote.conn(): one connection per thread, reused
            remote.conn().put_object(container, f'obj-{i:06d}', body,
                                     etag=etag, content_length=len(body))
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            # the workers authenticate before the clock starts
            list(pool.map(lambda _: remote.conn().head_account(),
                          range(CONCURRENCY * 2)))
            with self.meter() as meter:
                list(pool.map(put, range(count)))
        conn = remote.conn()
        for i in range(count):
            conn.delete_object(container, f'obj-{i:06d}')
        return meter

    def mode_note(self, mapped_first):
        return ('archive mode (read, PUT with Etag whose answer verifies '
                'it, local DELETE) vs PUT only')


def medians(rows, title):
    """A row of the medians of ``rows`` (rounds of one figure)."""
    ratios = [row.ratio for row in rows]
    first = rows[0]
    return Row(first.key.rsplit('-', 1)[0], title,
               median([row.measured for row in rows]),
               median([row.limit for row in rows]), first.unit,
               first.target, ratio=median(ratios),
               spread=spread(ratios), samples={'ratios': ratios},
               note=f'{len(rows)} rounds: ratios ' + ', '.join(
                   f'{ratio:.2f}' for ratio in ratios))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='2 x 16 MiB')
    parser.add_argument('--large-mib', type=int, default=64)
    parser.add_argument('--large-count', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=1,
                        help='large objects measured this many times')
    parser.add_argument('--count', type=int, default=0,
                        help='4 KiB objects too (default: none)')
    parser.add_argument('--link', metavar='RATE',
                        help='the remote proxy behind a link of RATE '
                        '(tc syntax: 1gbit) each way')
    parser.add_argument('--json', help='write the rows to this file')
    parser.add_argument('--keep-state', action='store_true')
    args = parser.parse_args(argv)
    # what SyncBench's helpers read of bench_sync's own options
    args.sync_mode = False
    if args.quick:
        args.large_mib, args.large_count = 16, 2
    if args.link and unavailable():
        parser.error(f'--link: {unavailable()}')
    across = f' across {args.link}' if args.link else ''
    bench = SwiftArchiveBench(args)
    rows = []
    try:
        bench.start()
        link = PortLink(bench.remote.port('proxy'), args.link) \
            if args.link else contextlib.nullcontext()
        with link:
            empty = bench.baseline()
            title = f'archive {args.large_mib} MiB objects to Swift{across}'
            large = [bench.throughput(
                f'large-{n}' if args.rounds > 1 else 'large', title,
                args.large_count, args.large_mib * MiB, 'MB/s', TARGET,
                empty) for n in range(args.rounds)]
            rows.extend(large)
            if len(large) > 1:
                rows.append(medians(large, f'{title}, median'))
            if args.count:
                rows.append(bench.throughput(
                    'small', f'archive {args.count} x 4 KiB objects to '
                    f'Swift{across}', args.count, SMALL_SIZE, 'obj/s',
                    SMALL_TARGET, empty, mapped_first=True))
    finally:
        bench.stop()
    return finish(rows, args.json)


if __name__ == '__main__':
    sys.exit(main())
