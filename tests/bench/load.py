"""Load and leak check: many concurrent clients against one proxy.

Usage::

    python -m tests.bench.load [--clients 200] [--seconds 60]
                               [--mix archived=40,local=30,listing=15,miss=15]
                               [--objects 50] [--object-size 4096]
                               [--proxy-workers 1] [--warmup 5] [--settle 5]
                               [--state-dir DIR] [--json FILE]

It starts an all-in-one cluster (:class:`shunt.tools.aio.Cluster`; or call
:func:`run_load` with a started one), and seeds one mapped container
holding ``--objects`` local objects and as many archived-only objects (in
the bucket only). Then ``--clients`` clients, each on its own keep-alive
HTTP/1.1 connection, send requests for ``--seconds`` seconds, each picking
at random (weights from ``--mix``):

``archived``  GET of an archived-only object: 200, the whole body
``local``     GET of a local object of the same container: 200, the body
``listing``   ``GET container?format=json``, the spliced listing: 200 (every
              tenth one is parsed and must hold every object, local and
              archived)
``miss``      GET of a name in neither store (from a pool of names, so both
              first misses and the negative cache's hits occur): 404

Anything else (another status, a short body, a wrong listing, a socket
error, no answer within ``--timeout``) is an error. Printed: requests,
errors and p50/p99/max latency by kind, the throughput, how busy each
process kept the CPUs, and the proxy's open file descriptors (sockets
among them) and RSS before and after the run. "Before" is read after a
warm-up at full load (so the S3 connection pools and caches are as full as
they get) and "after" once every client connection is closed and
``--settle`` seconds have passed: growth between the two is what a leak of
connections, file descriptors or green threads would show.

The cluster runs the shunt with its production defaults (negative cache
and fail-fast on, which the all-in-one cluster turns off for tests), and
the proxy's ``cache`` filter with ``--memcache-max-connections`` (32) per
worker, as a proxy meant for this many concurrent clients would be set
up: with Swift's default of 2, a proxy worker saturated by 200 clients
waits more than ``pool_timeout`` (1 s) for a memcache connection,
memcache is error-limited for a minute, and tempauth answers 401 to every
request meanwhile (``--memcache-max-connections 0`` shows it).

Exit status: 0 when there was no error; 1 when there was one; 2 when the
proxy's file descriptors grew by more than ``--fd-slack``.

The load generator: one asyncio event loop in one process, with a minimal
HTTP/1.1 client on raw streams (no per-request connection, no HTTP library
above the socket, bodies discarded as they arrive), so that it costs a
fraction of the CPU the proxy spends on a request. The machine has two
cores shared by the generator, the proxy, the Swift backends, memcached
and the S3 endpoint (moto); the output gives each one's CPU share, which
shows what the bottleneck was: the generator's share must stay well below
one core (it is flagged when above 0.8); ``background`` is what other jobs
on the machine took meanwhile (the figures are only comparable when it is
small). Every request goes to 127.0.0.1
and every loop is bounded in time and count.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.bench.common import (  # noqa: E402
    HOST,
    BackgroundMeter,
    children,
    cpu_seconds,
    memory_kib,
)

KINDS = ('archived', 'local', 'listing', 'miss')
DEFAULT_MIX = 'archived=40,local=30,listing=15,miss=15'
MISS_NAMES = 2000
# one listing in this many is parsed and checked row by row
LISTING_CHECK_EVERY = 10
# errors kept, to print
ERROR_SAMPLES = 10
# a client stops after this many requests whatever the clock says
MAX_REQUESTS_PER_CLIENT = 1_000_000
GENERATOR_BUSY = 0.8


class HTTPError(Exception):
    pass


# -- the client -----------------------------------------------------------

class Connection:
    """One keep-alive HTTP/1.1 connection to the proxy on raw asyncio
    streams."""

    def __init__(self, port, timeout):
        self.port = port
        self.timeout = timeout
        self.reader = self.writer = None

    async def _open(self):
        self.reader, self.writer = await asyncio.open_connection(
            HOST, self.port, limit=1 << 20)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, target, headers, keep_body=False):
        """``(status, body length, body or None)``."""
        return await asyncio.wait_for(
            self._get(target, headers, keep_body), self.timeout)

    async def _get(self, target, headers, keep_body):
        if self.writer is None:
            await self._open()
        self.writer.write(b'GET ' + target + b' HTTP/1.1\r\n' + headers)
        head = await self.reader.readuntil(b'\r\n\r\n')
        lines = head.split(b'\r\n')
        status = int(lines[0].split(None, 2)[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b':')
            name = name.strip().lower()
            if name == b'content-length':
                length = int(value)
            elif name == b'transfer-encoding':
                chunked = b'chunked' in value.lower()
            elif name == b'connection':
                close = b'close' in value.lower()
        parts = [] if keep_body else None
        got = 0
        if chunked:
            while True:
                size = int((await self.reader.readline()).split(b';')[0], 16)
                if size == 0:
                    await self.reader.readuntil(b'\r\n')
                    break
                data = await self.reader.readexactly(size + 2)
                got += size
                if keep_body:
                    parts.append(data[:-2])
        elif length is not None:
            remaining = length
            while remaining:
                data = await self.reader.read(min(remaining, 1 << 16))
                if not data:
                    raise HTTPError(f'connection closed {remaining} bytes '
                                    f'short of the body')
                remaining -= len(data)
                got += len(data)
                if keep_body:
                    parts.append(data)
        else:
            close = True
            while True:
                data = await self.reader.read(1 << 16)
                if not data:
                    break
                got += len(data)
                if keep_body:
                    parts.append(data)
        if close:
            self.close()
        return status, got, b''.join(parts) if keep_body else None


# -- the workload ---------------------------------------------------------

class Workload:
    """What the clients ask for and what each answer must be."""

    def __init__(self, base_path, container, archived, local, size, token,
                 mix):
        self.base = base_path
        self.container = container
        self.archived = [self._target(n) for n in archived]
        self.local = [self._target(n) for n in local]
        self.misses = [self._target(f'missing-{i}')
                       for i in range(MISS_NAMES)]
        self.listing = self._target(None) + b'?format=json'
        self.expected_names = sorted(set(archived) | set(local))
        self.size = size
        self.headers = (b'Host: %s\r\nX-Auth-Token: %s\r\n\r\n' % (
            HOST.encode(), token.encode()))
        self.kinds = [k for k in KINDS if mix.get(k)]
        self.weights = [mix[k] for k in self.kinds]

    def _target(self, name):
        path = f'{self.base}/{self.container}'
        if name is not None:
            path += '/' + urllib.parse.quote(name)
        return path.encode()

    def pick(self, rng):
        kind = rng.choices(self.kinds, self.weights)[0]
        if kind == 'archived':
            return kind, rng.choice(self.archived)
        if kind == 'local':
            return kind, rng.choice(self.local)
        if kind == 'miss':
            return kind, rng.choice(self.misses)
        return kind, self.listing

    def check(self, kind, status, length, body):
        """None when the answer is right, else what is wrong."""
        want = 404 if kind == 'miss' else 200
        if status != want:
            return f'status {status}, expected {want}'
        if kind in ('archived', 'local') and length != self.size:
            return f'{length} body bytes, expected {self.size}'
        if body is not None:
            try:
                names = [row['name'] for row in json.loads(body)]
            except (ValueError, KeyError, TypeError) as err:
                return f'listing is not JSON rows: {err}'
            if names != self.expected_names:
                return (f'listing has {len(names)} rows, expected '
                        f'{len(self.expected_names)}')
        return None


class Stats:
    def __init__(self):
        self.latency = {k: [] for k in KINDS}
        self.errors = {k: 0 for k in KINDS}
        self.samples = []

    def error(self, kind, what):
        self.errors[kind] += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(f'{kind}: {what}')

    @property
    def requests(self):
        return sum(len(v) for v in self.latency.values())

    @property
    def error_count(self):
        return sum(self.errors.values())


async def client(number, port, workload, stats, deadline, timeout, seed):
    rng = random.Random(seed * 100_003 + number)
    conn = Connection(port, timeout)
    listings = 0
    try:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                break
            kind, target = workload.pick(rng)
            keep = False
            if kind == 'listing':
                listings += 1
                keep = listings % LISTING_CHECK_EVERY == 0
            started = time.perf_counter()
            try:
                status, length, body = await conn.get(
                    target, workload.headers, keep)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError, ValueError, HTTPError) as err:
                conn.close()
                stats.latency[kind].append(time.perf_counter() - started)
                stats.error(kind, f'{type(err).__name__}: {err}'.strip())
                continue
            stats.latency[kind].append(time.perf_counter() - started)
            wrong = workload.check(kind, status, length, body)
            if wrong:
                stats.error(kind, wrong)
    finally:
        conn.close()


async def _run_clients(clients, port, workload, seconds, timeout, seed):
    stats = Stats()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(
        client(i, port, workload, stats, deadline, timeout, seed)
        for i in range(clients)))
    # let the transports close before anyone counts file descriptors
    await asyncio.sleep(0.2)
    return stats


def drive(clients, port, workload, seconds, timeout=30.0, seed=0):
    """Run the clients for ``seconds``; :class:`Stats`."""
    return asyncio.run(_run_clients(clients, port, workload, seconds,
                                    timeout, seed))


# -- the proxy, seen from /proc ---------------------------------------------

def fd_counts(pid):
    """``(open fds, sockets among them)`` of a process."""
    total = sockets = 0
    fd_dir = f'/proc/{pid}/fd'
    for fd in os.listdir(fd_dir):
        total += 1
        try:
            if os.readlink(f'{fd_dir}/{fd}').startswith('socket:'):
                sockets += 1
        except OSError:
            pass
    return total, sockets


def proxy_pids(cluster):
    parent = cluster.procs['proxy'].pid
    return [parent] + sorted(children(parent))


def snapshot(cluster):
    """``{pid: {'fds', 'sockets', 'rss_kib'}}`` of the proxy's processes."""
    out = {}
    for pid in proxy_pids(cluster):
        fds, sockets = fd_counts(pid)
        out[pid] = {'fds': fds, 'sockets': sockets,
                    'rss_kib': memory_kib(pid)['VmRSS']}
    return out


class CpuMeter:
    """CPU seconds used meanwhile by named processes (and this one)."""

    def __init__(self, pids):
        self.pids = dict(pids)
        self.start = self._read()
        self.t0 = time.monotonic()

    def _read(self):
        out = {}
        for name, pids in self.pids.items():
            total = 0.0
            for pid in pids:
                try:
                    total += cpu_seconds(pid)
                except OSError:
                    pass
            out[name] = total
        out['load generator'] = time.process_time()
        return out

    def cores(self):
        """``{name: average cores busy}`` since the meter started."""
        end = self._read()
        elapsed = time.monotonic() - self.t0
        return {name: (end[name] - self.start[name]) / elapsed
                for name in end}


def cluster_cpu_pids(cluster):
    """The processes that share the machine, by role."""
    roles = {'proxy': [], 's3 (moto)': [], 'swift backends': [],
             'memcached': []}
    for name, proc in cluster.procs.items():
        if proc.pid is None:
            continue
        pids = [proc.pid] + children(proc.pid)
        if name == 'proxy':
            roles['proxy'] += pids
        elif name == 's3':
            roles['s3 (moto)'] += pids
        elif name == 'memcached':
            roles['memcached'] += pids
        else:
            roles['swift backends'] += pids
    return roles


# -- set-up ---------------------------------------------------------------

def seed_container(cluster, objects, size, log=print):
    """A mapped container with ``objects`` local and as many archived-only
    objects; returns the :class:`Workload` parts."""
    storage_url, token = cluster.token()
    base = urllib.parse.urlsplit(storage_url).path
    account = base.split('/')[2]
    container = f'load-{time.time_ns()}'
    conn = cluster.swift_conn()
    conn.put_container(container)
    body = os.urandom(size)
    local = [f'local/{i:05d}' for i in range(objects)]
    archived = [f'archived/{i:05d}' for i in range(objects)]
    for name in local:
        conn.put_object(container, name, body)
    for name in archived:
        cluster.archive_object(account, container, name, body)
    profiles = [cluster.profile(account, container)]
    cluster.write_mappings(profiles)
    cluster.restart_proxy()  # load the mappings now
    conn.close()
    log(f'seeded {container}: {objects} local + {objects} archived objects '
        f'of {size} bytes')
    return base, container, archived, local, token


def parse_mix(text):
    mix = {}
    for part in text.split(','):
        name, _, weight = part.partition('=')
        name = name.strip()
        if name not in KINDS:
            raise argparse.ArgumentTypeError(
                f'unknown kind {name!r} (kinds: {", ".join(KINDS)})')
        try:
            mix[name] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f'bad weight in {part!r}')
        if mix[name] < 0:
            raise argparse.ArgumentTypeError(f'negative weight in {part!r}')
    if not any(mix.values()):
        raise argparse.ArgumentTypeError('every weight is 0')
    return mix


# -- report ---------------------------------------------------------------

def percentile(values, q):
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method='inclusive')[q - 1]


def _ms(value):
    return '-' if value is None else f'{value * 1000:.1f}'


def report(stats, seconds, before, after, cores, args, log=print):
    rows = [('kind', 'requests', 'errors', 'p50 ms', 'p99 ms', 'max ms')]
    every = []
    for kind in KINDS:
        lat = stats.latency[kind]
        every += lat
        if not lat and not stats.errors[kind]:
            continue
        rows.append((kind, str(len(lat)), str(stats.errors[kind]),
                     _ms(percentile(lat, 50)), _ms(percentile(lat, 99)),
                     _ms(max(lat) if lat else None)))
    rows.append(('all', str(len(every)), str(stats.error_count),
                 _ms(percentile(every, 50)), _ms(percentile(every, 99)),
                 _ms(max(every) if every else None)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    log('')
    for row in rows:
        log('  '.join(c.rjust(w) if i else c.ljust(w)
                      for i, (c, w) in enumerate(zip(row, widths,
                                                     strict=True))))
    log(f'\nthroughput      {len(every) / seconds:.0f} requests/s over '
        f'{seconds:.1f}s with {args.clients} clients')
    log('CPU (cores)     ' + ', '.join(
        f'{name} {value:.2f}' for name, value in cores.items()))
    if cores.get('load generator', 0) > GENERATOR_BUSY:
        log(f'WARNING: the load generator kept {cores["load generator"]:.2f}'
            f' cores busy: it may have been the bottleneck')
    log('proxy process   fds before/after (sockets)      RSS before/after')
    growth = 0
    for pid in sorted(set(before) | set(after)):
        b, a = before.get(pid), after.get(pid)
        if b is None or a is None:
            log(f'  {pid}: present only {"after" if b is None else "before"}'
                f' the run')
            growth += (a or {'fds': 0})['fds']
            continue
        growth += a['fds'] - b['fds']
        rss = (a['rss_kib'] - b['rss_kib']) / b['rss_kib'] * 100
        log(f'  {pid:<8}      {b["fds"]:>4} ({b["sockets"]:>3}) -> '
            f'{a["fds"]:>4} ({a["sockets"]:>3})'
            f'          {b["rss_kib"] / 1024:7.1f} -> '
            f'{a["rss_kib"] / 1024:7.1f} MiB ({rss:+.1f}%)')
    if stats.samples:
        log('\nerrors (first ones):')
        for sample in stats.samples:
            log(f'  {sample}')
    return growth


def write_memcache_conf(cluster, max_connections):
    """``memcache.conf`` in the cluster's swift_dir, read by the proxy's
    ``cache`` filter at its next start."""
    path = os.path.join(cluster.state_dir, 'memcache.conf')
    if max_connections > 0:
        with open(path, 'w') as fp:
            fp.write(f'[memcache]\nmemcache_max_connections = '
                     f'{max_connections}\n')
    elif os.path.exists(path):
        os.unlink(path)


def run_load(cluster, args, log=print):
    """Seed ``cluster`` (a started :class:`shunt.tools.aio.Cluster`; its proxy
    is restarted), run the load and print the report; returns ``(exit
    status, summary dict)``."""
    write_memcache_conf(cluster, args.memcache_max_connections)
    base, container, archived, local, token = seed_container(
        cluster, args.objects, args.object_size, log)
    workload = Workload(base, container, archived, local, args.object_size,
                        token, args.mix)
    port = cluster.ports['proxy']
    if args.warmup:
        log(f'warm-up: {args.clients} clients for {args.warmup:g}s')
        warm = drive(args.clients, port, workload, args.warmup, args.timeout,
                     seed=1)
        if warm.error_count:
            log(f'warm-up errors: {warm.samples}')
    time.sleep(args.settle)
    before = snapshot(cluster)
    meter = CpuMeter(cluster_cpu_pids(cluster))
    background = BackgroundMeter()
    log(f'load: {args.clients} clients for {args.seconds:g}s, mix '
        + ', '.join(f'{k}={v:g}' for k, v in args.mix.items()))
    started = time.monotonic()
    stats = drive(args.clients, port, workload, args.seconds, args.timeout,
                  seed=2)
    elapsed = time.monotonic() - started
    cores = meter.cores()
    # anything on the machine that is not this run (other users' jobs)
    cores['background'] = background.cores()
    time.sleep(args.settle)
    after = snapshot(cluster)
    growth = report(stats, elapsed, before, after, cores, args, log)
    status = 0
    if stats.error_count:
        log(f'\nFAILED: {stats.error_count} error(s)')
        status = 1
    elif growth > args.fd_slack:
        log(f'\nFAILED: the proxy holds {growth} more file descriptors '
            f'than before the run (slack {args.fd_slack})')
        status = 2
    else:
        log(f'\nOK: no error; proxy file descriptors {growth:+d}')
    summary = {
        'clients': args.clients, 'seconds': elapsed,
        'mix': args.mix, 'requests': {k: len(v) for k, v in
                                      stats.latency.items()},
        'errors': stats.errors, 'error_samples': stats.samples,
        'p50_ms': {k: (percentile(v, 50) or 0) * 1000
                   for k, v in stats.latency.items()},
        'p99_ms': {k: (percentile(v, 99) or 0) * 1000
                   for k, v in stats.latency.items()},
        'throughput': stats.requests / elapsed, 'cores': cores,
        'proxy_before': before, 'proxy_after': after, 'status': status,
    }
    return status, summary


def build_parser():
    parser = argparse.ArgumentParser(
        prog='python -m tests.bench.load',
        description='Concurrent clients against one all-in-one proxy: '
                    'archived and local GETs, spliced listings and misses;'
                    ' errors, latency, throughput, and the proxy\'s file '
                    'descriptors and memory before and after.')
    parser.add_argument('--clients', type=int, default=200,
                        help='concurrent clients, one keep-alive connection'
                             ' each (default: %(default)s)')
    parser.add_argument('--seconds', type=float, default=60.0,
                        help='length of the measured run (default: '
                             '%(default)s)')
    parser.add_argument('--mix', type=parse_mix, default=DEFAULT_MIX,
                        help='weights of the request kinds (default: '
                             '%(default)s)')
    parser.add_argument('--objects', type=int, default=50,
                        help='local objects, and as many archived ones '
                             '(default: %(default)s)')
    parser.add_argument('--object-size', type=int, default=4096,
                        help='bytes per object (default: %(default)s)')
    parser.add_argument('--proxy-workers', type=int, default=1,
                        help='proxy worker processes (default: '
                             '%(default)s)')
    parser.add_argument('--warmup', type=float, default=5.0,
                        help='seconds of load before "before" is read '
                             '(default: %(default)s)')
    parser.add_argument('--settle', type=float, default=5.0,
                        help='seconds to wait before reading the proxy '
                             '(default: %(default)s)')
    parser.add_argument('--timeout', type=float, default=30.0,
                        help='seconds a request may take before it counts '
                             'as an error (default: %(default)s)')
    parser.add_argument('--fd-slack', type=int, default=16,
                        help='file descriptors the proxy may gain over the '
                             'run (default: %(default)s)')
    parser.add_argument('--memcache-max-connections', type=int, default=32,
                        help="the proxy's memcache connections per worker "
                             "(memcache.conf in the state dir; 0: Swift's "
                             "default of 2, see the module doc; default: "
                             "%(default)s)")
    parser.add_argument('--state-dir', default=None,
                        help='state directory of the cluster (kept)')
    parser.add_argument('--json', metavar='FILE', default=None,
                        help='also write the figures as JSON')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if isinstance(args.mix, str):
        args.mix = parse_mix(args.mix)
    if args.clients < 1 or args.seconds <= 0:
        print('--clients and --seconds must be positive', file=sys.stderr)
        return 1
    from shunt.tools.aio import Cluster
    # the shunt's production defaults (the aio turns its caches off)
    cluster = Cluster(state_dir=args.state_dir, reload_interval=15,
                      proxy_workers=args.proxy_workers,
                      filter_conf={'negative_cache_ttl': 10,
                                   'fail_fast_threshold': 5,
                                   'fail_fast_period': 5})
    t0 = time.monotonic()
    cluster.start()
    try:
        print(f'cluster up in {time.monotonic() - t0:.1f}s (proxy workers: '
              f'{args.proxy_workers}, state dir {cluster.state_dir})',
              flush=True)
        status, summary = run_load(cluster, args,
                                   log=lambda s: print(s, flush=True))
    finally:
        cluster.stop()
    if args.json:
        with open(args.json, 'w') as fp:
            json.dump(summary, fp, indent=2, sort_keys=True, default=str)
    return status


if __name__ == '__main__':
    sys.exit(main())
