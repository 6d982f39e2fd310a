"""The sync daemon's speed and memory on the all-in-one cluster, against
boto3 in the same run.

One cluster (one container node), the daemon run with ``--once`` on it:

* **large objects**: archive ``--large-count`` objects of ``--large-mib``
  MiB (default 3 x 64 MiB) — the daemon reads each from Swift, uploads it
  with Content-MD5, verifies it and deletes the local copy — against boto3
  putting the same bytes (from memory) to the same endpoint with the same
  concurrency. Ratio of MB/s (target >= 0.85);
* **small objects**: ``--count`` objects of 4 KiB (default 500; the issue's
  figure is 10,000) the same way, objects/s (target >= 0.8). They are
  written into a container the daemon has walked already (the steady
  state: rows new to it, which it writes with ``If-None-Match: *`` and no
  HEAD where the store honours that); ``--first-walk`` writes them before
  the container is mapped (a first walk, as after a migration: a HEAD per
  object first);
* ``--sync-mode``: large and small objects in sync mode (the local copies
  kept): what an upload costs without the archive's local delete;
* **memory**: the daemon's peak RSS while archiving one ``--big-mib``
  object (default 1024), minus its peak RSS in a pass with nothing to do
  (target: <= 32 MiB growth);
* **walk**: a sync-mode container of ``--rows`` objects (default 2,000)
  that are all in the bucket already; the daemon's progress files are
  removed and a pass walks every row again: rows/s, peak RSS and the S3
  requests it costs (counted by a proxy in front of the endpoint; target:
  no request per row); then one more pass with the progress kept (the
  steady state);
* **migrate**: a first walk of ``--migrate-rows`` rows (default 20,000;
  the issue names 1,000,000) whose copies are all in the bucket, as after
  moving from 1space's daemon: the rows go straight into the container DB
  (as object servers' updates would: no local objects, an up-to-date row
  needs none) and the copies into the bucket with boto3; rows/s, peak RSS
  and S3 requests of the daemon's first pass, then of a pass with the
  progress kept.

A daemon pass's time is the daemon's own ``pass.timing`` metric (StatsD,
caught by this process): the pass as a daemon running for good makes it,
without the start of a ``--once`` process (imports, rings, clients: 1.7
to 2.4 s here, from run to run) and its exit, less that of a pass with
nothing to do (one container). The process's own wall time is printed
too, with the ratio it gives when the time of a whole process with
nothing to do is subtracted from it (``by process``): the same figure,
with the noise of two process starts in it.

Every party shares the machine's cores, so each throughput figure has two
more lines, from the CPU seconds (user + system) each party used, in the
same run:

* ``cpu s``: during the daemon pass (less a pass with nothing to do): the
  daemon (getrusage of the reaped child), the endpoint (``s3``), the Swift
  servers (sum; per kind) and this process (``bench``: its RSS sampling);
  during the direct upload: the endpoint and this process (the client's
  threads);
* ``machine bound``: the best ratio any daemon could reach here, the direct
  upload's wall time over the least wall time the pass's other work allows
  — its CPU spread over every core, but no less than the busiest endpoint
  process's CPU (one core, GIL) — as if the daemon cost nothing; then the
  same with the daemon's (and bench's) CPU added: that "CPU-limited" wall
  against the measured one says how close the pass came to using every
  core. ``others' jobs``: cores busy with processes not of this run;
  ``cores busy``: the share of all cores this run and those jobs used.

The target is judged on the measured ratio; the bound says how far it can
be reached on this machine. Run::

    python tests/bench/bench_sync.py [--quick] [--count N] [--rows N]
        [--large-mib M] [--large-count N] [--big-mib M] [--first-walk]
        [--sync-mode] [--migrate-rows N]
        [--only large|small|mem|walk|migrate] [--json PATH]

(not part of the test run; ``--quick`` takes about a minute).
"""

import argparse
import base64
import concurrent.futures
import hashlib
import json
import os
import resource
import shutil
import socket
import sys
import time
import urllib.parse
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from shunt.tools.aio import Cluster  # noqa: E402
from tests.bench.common import (  # noqa: E402
    BackgroundMeter,
    MiB,
    Row,
    _proc_cpu,
    median,
)
from tests.bench.countproxy import CountingProxy  # noqa: E402

CONCURRENCY = 8
LARGE_TARGET = 0.85
SMALL_TARGET = 0.8
MEMORY_TARGET_MIB = 32
SMALL_SIZE = 4096


def log(message):
    print(f'[{time.strftime("%H:%M:%S")}] {message}', file=sys.stderr,
          flush=True)


def _status_kib(pid, field):
    try:
        with open(f'/proc/{pid}/status') as fp:
            for line in fp:
                name, _, rest = line.partition(':')
                if name == field:
                    return int(rest.split()[0])
    except OSError:
        pass
    return None


def _group(pgid):
    """Pids of a process group (the daemon and any worker it forks)."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as fp:
                fields = fp.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != 'Z':
            pids.append(int(entry))
    return pids


def _rusage_cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Wall time and CPU seconds (user + system) over a ``with`` block:
    of each process group in ``groups`` (name: pgid; their threads and
    reaped children included), of this process (``bench``) and of its
    reaped children (``daemon``: a ``--once`` pass is reaped by
    ``wait_sync``); and the cores other users' jobs kept busy
    (``background``)."""

    def __init__(self, groups):
        self.groups = groups
        self.seconds, self.cpu, self.background = None, {}, None

    def _read(self):
        out = {name: sum(_proc_cpu(pid) for pid in _group(pgid))
               for name, pgid in self.groups.items()}
        out['bench'] = _rusage_cpu(resource.RUSAGE_SELF)
        out['daemon'] = _rusage_cpu(resource.RUSAGE_CHILDREN)
        return out

    def __enter__(self):
        self._others = BackgroundMeter()
        self._start = self._read()
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self._t0
        end = self._read()
        self.cpu = {name: end[name] - self._start[name] for name in end}
        self.background = self._others.cores()


class Pass(NamedTuple):
    """A daemon pass: seconds, peak RSS (KiB), CPU seconds by party,
    the cores others' jobs kept busy (see :class:`CpuMeter`) and the
    daemon's own ``pass.timing`` in seconds (None if not received)."""
    seconds: float
    peak: int
    cpu: dict
    background: float
    timed: float = None


class StatsdCatcher:
    """A UDP socket on loopback for the daemon's StatsD metrics."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def drain(self):
        """The metrics received since the last call: ``[(name, value,
        kind)]``."""
        out = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return out
            for line in data.decode('utf-8', 'replace').splitlines():
                name, _, rest = line.partition(':')
                value, _, kind = rest.partition('|')
                try:
                    out.append((name, float(value), kind.split('|')[0]))
                except ValueError:
                    continue

    def last_timing(self, suffix):
        """Seconds of the last ``*suffix`` timing received, or None."""
        timings = [value / 1000 for name, value, kind in self.drain()
                   if kind == 'ms' and name.endswith(suffix)]
        return timings[-1] if timings else None

    def close(self):
        self.sock.close()


class Repeating:
    """A seekable body of ``count`` copies of ``chunk`` (so a client may
    retry it) that never holds more than one chunk."""

    def __init__(self, chunk, count):
        self.chunk, self.size, self.pos = chunk, len(chunk) * count, 0

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.size - self.pos
        start = self.pos % len(self.chunk)
        # up to the end of the current copy of the chunk
        size = min(size, self.size - self.pos, len(self.chunk) - start)
        data = self.chunk[start:start + size]
        self.pos += len(data)
        return data

    def seek(self, offset, whence=0):
        self.pos = offset if whence == 0 else (
            self.pos + offset if whence == 1 else self.size + offset)
        return self.pos

    def tell(self):
        return self.pos


class MigrationBench:
    """The ``migrate`` figure, a mixin of :class:`SyncBench`."""

    def _broker(self, container):
        """The container's DB on the (only) container node."""
        import glob

        from swift.container.backend import ContainerBroker
        node = self.aio.container_nodes[0]
        for path in glob.glob(os.path.join(
                self.aio.node_devices_dir(node), '*', 'containers', '*',
                '*', '*', '*.db')):
            broker = ContainerBroker(path)
            if broker.get_info()['container'] == container:
                return broker
        raise RuntimeError(f'no DB of {container}')

    def migrate(self, rows, empty):
        """A first walk of ``rows`` rows whose objects are all in the
        bucket already, as after moving from 1space's daemon: the rows
        are written into the container DB as an object server's updates
        would (no local objects: an up-to-date row needs none) and the
        bucket copies put with boto3 an hour later than the rows."""
        from swift.common.utils import Timestamp

        from shunt.core.layout import object_key
        container = 'bench-migrate'
        self.conn.put_container(container)
        broker = self._broker(container)
        when = Timestamp(time.time() - 3600).internal
        etag = hashlib.md5(b'').hexdigest()
        names = [f'row-{i:08d}' for i in range(rows)]
        log(f'migrate: {rows} rows into the DB, their copies into the '
            f'bucket')
        for start in range(0, rows, 10000):
            broker.merge_items([
                {'name': name, 'created_at': when, 'size': 0,
                 'content_type': 'application/octet-stream', 'etag': etag,
                 'deleted': 0, 'storage_policy_index': 0}
                for name in names[start:start + 10000]])
        s3, bucket = self.s3, self.aio.bucket

        def put(chunk):
            for name in chunk:
                s3.put_object(Bucket=bucket, Body=b'', Key=object_key(
                    self.account, container, name))
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(put, [names[i::CONCURRENCY]
                                for i in range(CONCURRENCY)]))
        self.map(self.aio.profile(self.account, container,
                                  aws_endpoint=self.counter.url))
        mark = self.counter.count()
        log('migrate: first pass')
        run = self.sync_pass()
        calls = self.counter.since(mark)
        kinds = {}
        for method, _path in calls:
            kinds[method] = kinds.get(method, 0) + 1
        walk_s = max(run.seconds - empty.seconds, 1e-3)
        mark = self.counter.count()
        kept = self.sync_pass()
        kept_calls = len(self.counter.since(mark))
        return Row('migrate', f'first walk of {rows} rows in the bucket',
                   rows / walk_s, None, 'rows/s', 0.01, check='<=',
                   value=len(calls) / rows, value_unit='S3 calls/row',
                   samples={'pass_s': run.seconds, 'calls': kinds,
                            'peak_rss_mib': run.peak / 1024,
                            'empty_peak_rss_mib': empty.peak / 1024,
                            'kept_progress_calls': kept_calls,
                            'kept_progress_pass_s': kept.seconds},
                   note=f'{len(calls)} S3 requests {kinds}, peak RSS '
                        f'{run.peak / 1024:.1f} MiB (a pass with nothing '
                        f'to do: {empty.peak / 1024:.1f}), pass '
                        f'{run.seconds:.2f}s; then with the progress kept: '
                        f'{kept_calls} S3 requests, pass '
                        f'{kept.seconds:.2f}s')


class SyncBench(MigrationBench):
    def __init__(self, args, **cluster_options):
        self.args = args
        self.statsd = StatsdCatcher()
        # container_time: a measured pass handles every row, however long
        # it takes (the default 60 s would end it early, leaving rows for
        # a next pass, and the figure would count objects not handled)
        self.aio = Cluster(reload_interval=15, keep_state_dir=args.keep_state,
                           sync_conf={'concurrency': CONCURRENCY,
                                      'read_timeout': 60,
                                      'verification_slack': 3600,
                                      'container_time': 86400,
                                      'log_level': 'WARNING',
                                      'log_statsd_host': '127.0.0.1',
                                      'log_statsd_port': self.statsd.port},
                           **cluster_options)
        self.counter = None

    def start(self):
        self.aio.start()
        url, _ = self.aio.token()
        self.account = urllib.parse.urlsplit(url).path.split('/')[2]
        self.conn = self.aio.swift_conn(retries=2)
        self.s3 = self.aio.s3_client()
        self.counter = CountingProxy(self.aio.ports['s3']).start()

    def stop(self):
        if self.counter is not None:
            self.counter.stop()
        self.aio.stop()
        self.statsd.close()

    # -- tools ----------------------------------------------------------

    def map(self, *profiles):
        self.aio.write_mappings(list(profiles))

    def archive_profile(self, container):
        """Archive mode, or sync mode with ``--sync-mode`` (the local copy
        kept: no local DELETE per object)."""
        return self.aio.profile(self.account, container,
                                retain_local=bool(self.args.sync_mode))

    def meter(self):
        """A :class:`CpuMeter` of every cluster process but the daemon."""
        return CpuMeter({name: proc.pid
                         for name, proc in self.aio.procs.items()
                         if not name.startswith('sync-') and proc.running()})

    # the archive endpoint: its label and its processes (aio.procs names)
    ENDPOINT = 's3'

    def endpoint_procs(self):
        return ('s3',)

    def server_kind(self, name):
        """The kind of a cluster process that is not the endpoint."""
        return 'container' if name in self.aio.container_nodes else name

    def sync_pass(self, expect_ok=True):
        """One ``--once`` pass, a :class:`Pass`."""
        aio = self.aio
        node = aio.container_nodes[0]
        self.statsd.drain()
        with self.meter() as meter:
            t0 = time.monotonic()
            aio.start_sync(node, once=True)
            proc = aio.procs[f'sync-{node}']
            peak, pids, polls = 0, [], 0
            while proc.running():
                # VmHWM is a high-water mark: a few reads a second see the
                # peak; the group (a scan of /proc) is looked up less often,
                # so that the bench takes little CPU from the pass
                if polls % 10 == 0:
                    pids = _group(proc.pid)
                polls += 1
                for pid in pids:
                    peak = max(peak, _status_kib(pid, 'VmHWM') or 0)
                time.sleep(0.05)
            seconds = time.monotonic() - t0
            status, output = aio.wait_sync(node)
        if expect_ok and status != 0:
            raise RuntimeError(f'daemon pass failed ({status}):\n'
                               f'{output[-3000:]}')
        return Pass(seconds, peak, meter.cpu, meter.background,
                    self.statsd.last_timing('.pass.timing'))

    def empty_pass(self, container):
        """The cost of a pass with nothing to do on one mapped container:
        the quicker of two."""
        self.conn.put_container(container)
        self.map(self.archive_profile(container))
        return min((self.sync_pass() for _ in range(2)),
                   key=lambda run: run.seconds)

    def baseline(self):
        """Two :meth:`empty_pass`: a :class:`Pass` of their median seconds
        and CPU and their larger peak."""
        log('a pass with nothing to do')
        empties = [self.empty_pass('bench-empty') for _ in range(2)]
        return Pass(median([e.seconds for e in empties]),
                    max(e.peak for e in empties),
                    {name: median([e.cpu.get(name) for e in empties])
                     for name in empties[0].cpu},
                    median([e.background for e in empties]),
                    median([e.timed or 0.0 for e in empties]))

    def put_many(self, container, names, body):
        self.conn.put_container(container)

        def put(name):
            conn = self.aio.swift_conn(retries=3)
            try:
                conn.put_object(container, name, body)
            finally:
                conn.close()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(put, names))

    def boto3_puts(self, prefix, count, body):
        """The :class:`CpuMeter` of boto3 putting ``count`` objects of
        ``body`` with Content-MD5, CONCURRENCY at a time."""
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        s3, bucket = self.s3, self.aio.bucket

        def put(i):
            s3.put_object(Bucket=bucket, Key=f'{prefix}/{i}', Body=body,
                          ContentMD5=md5)
        with self.meter() as meter, \
                concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(put, range(count)))
        self._delete_prefix(prefix)
        return meter

    def _delete_prefix(self, prefix):
        s3, bucket = self.s3, self.aio.bucket
        for page in s3.get_paginator('list_objects_v2').paginate(
                Bucket=bucket, Prefix=prefix + '/'):
            keys = [{'Key': o['Key']} for o in page.get('Contents', [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={'Objects': keys})

    def archived_all(self, container, names):
        from swiftclient.exceptions import ClientException
        if self.args.sync_mode:
            from shunt.core.layout import object_key
            for name in names:
                self.s3.head_object(Bucket=self.aio.bucket, Key=object_key(
                    self.account, container, name, None))
            return True
        for name in names:
            try:
                self.conn.head_object(container, name, headers={
                    'X-Cloud-Sync-Shunt-Bypass': 'true'})
                return False
            except ClientException as err:
                if err.http_status != 404:
                    raise
        return True

    # -- figures ----------------------------------------------------------

    # the direct upload a pass is compared with: its label, its samples key
    DIRECT, DIRECT_KEY = 'boto3', 'boto3_s'

    def direct_puts(self, prefix, count, body):
        return self.boto3_puts(prefix, count, body)

    def mode_note(self, mapped_first):
        return ('objects written into a walked container' if mapped_first
                else 'first walk of the container')

    def machine_bound(self, run, empty, direct, wall):
        """The CPU each party used in the pass ``run`` (less the pass with
        nothing to do, ``empty``) and in the direct run (a
        :class:`CpuMeter`), and the best ratio a daemon could reach on
        this machine with them: ``(samples, printed lines)``. ``wall``:
        the pass's seconds."""
        cores = os.cpu_count() or 1
        pass_cpu = {name: max(cpu - empty.cpu.get(name, 0.0), 0.0)
                    for name, cpu in run.cpu.items()}
        endpoint = [n for n in self.endpoint_procs() if n in pass_cpu]
        endpoint_cpu = sum(pass_cpu[n] for n in endpoint)
        # the endpoint's busiest process runs on one core at most (GIL)
        busiest = max((pass_cpu[n] for n in endpoint), default=0.0)
        servers = {}
        for name, cpu in pass_cpu.items():
            if name not in endpoint and name not in ('bench', 'daemon'):
                kind = self.server_kind(name)
                servers[kind] = servers.get(kind, 0.0) + cpu
        others = endpoint_cpu + sum(servers.values())
        # a daemon costing nothing, then the pass's own CPU
        free_wall = max(busiest, others / cores)
        total = others + pass_cpu['daemon'] + pass_cpu['bench']
        cpu_wall = max(busiest, total / cores)
        # the cores' share this run and others' jobs kept busy in the pass
        busy = (total / wall + run.background) / cores
        direct_endpoint = sum(direct.cpu.get(n, 0.0) for n in endpoint)
        samples = {
            'cores': cores, 'cpu_pass': pass_cpu, 'cpu_empty': empty.cpu,
            'cpu_endpoint': endpoint_cpu, 'cpu_servers': servers,
            'cpu_direct': {'endpoint': direct_endpoint,
                           'bench': direct.cpu['bench']},
            'background_cores': {'pass': run.background,
                                 'direct': direct.background},
            'bound_wall_s': free_wall, 'bound_ratio': direct.seconds /
            free_wall if free_wall else None,
            'cpu_limited_wall_s': cpu_wall,
            'cpu_limited_ratio': direct.seconds / cpu_wall,
            'machine_busy': busy}
        per_kind = ' '.join(f'{kind} {cpu:.1f}' for kind, cpu in sorted(
            servers.items(), key=lambda item: -item[1]))
        bound = (f'{samples["bound_ratio"]:.2f}' if free_wall
                 else 'none')
        lines = [
            f'cpu s: pass {wall:.1f}s wall: daemon {pass_cpu["daemon"]:.1f}'
            f', {self.ENDPOINT} {endpoint_cpu:.1f}, swift '
            f'{sum(servers.values()):.1f} ({per_kind}), bench '
            f'{pass_cpu["bench"]:.1f}; {self.DIRECT} {direct.seconds:.1f}s '
            f'wall: {self.ENDPOINT} {direct_endpoint:.1f}, bench '
            f'{direct.cpu["bench"]:.1f}',
            f'machine bound ({cores} cores): ratio {bound} with a daemon '
            f'costing nothing ({free_wall:.1f}s), '
            f'{samples["cpu_limited_ratio"]:.2f} with its CPU ({cpu_wall:.1f}s'
            f' CPU-limited vs {wall:.1f}s measured: {cpu_wall / wall:.0%}); '
            f'others\' jobs: {run.background:.2f} cores in the pass '
            f'(cores busy: {busy:.0%}), {direct.background:.2f} in '
            f'{self.DIRECT}\'s']
        return samples, lines

    def throughput(self, key, title, count, size, unit, target, empty,
                   mapped_first=False):
        """``empty``: the :class:`Pass` with nothing to do.
        ``mapped_first``: the container is mapped and walked (empty)
        before the objects are written, as for a daemon already running
        when they arrive (its rows are new to it); else the objects are
        there before the mapping (a first walk, as after a migration)."""
        body = os.urandom(size)
        container = f'bench-{key}'
        names = [f'obj-{i:06d}' for i in range(count)]
        if mapped_first:
            self.conn.put_container(container)
            self.map(self.archive_profile(container))
            self.sync_pass()
        log(f'{title}: writing {count} x {size} bytes into Swift')
        self.put_many(container, names, body)
        self.map(self.archive_profile(container))
        log(f'{title}: daemon pass')
        run = self.sync_pass()
        seconds = run.seconds
        if not self.archived_all(container, names[:25] + names[-25:]):
            raise RuntimeError(f'{title}: the pass did not archive all')
        by_process = max(seconds - empty.seconds, 1e-3)
        # the pass as the daemon timed it, less an empty one's
        daemon = max(run.timed - (empty.timed or 0.0), 1e-3) \
            if run.timed else by_process
        log(f'{title}: {self.DIRECT}, {count} puts, concurrency '
            f'{CONCURRENCY}')
        direct_run = self.direct_puts(f'bench-direct-{key}', count, body)
        direct = direct_run.seconds
        if unit == 'MB/s':
            measured = count * size / daemon / 1e6
            limit = count * size / direct / 1e6
        else:
            measured, limit = count / daemon, count / direct
        cpu_samples, cpu_lines = self.machine_bound(run, empty, direct_run,
                                                    daemon)
        timing = (f'daemon pass.timing {run.timed:.2f}s (an empty pass\'s '
                  f'{empty.timed or 0.0:.2f}s); ' if run.timed else
                  'no pass.timing received: by process; ')
        return Row(key, title, measured, limit, unit, target,
                   samples={'pass_timing_s': run.timed,
                            'empty_pass_timing_s': empty.timed,
                            'process_s': seconds,
                            'empty_process_s': empty.seconds,
                            'ratio_by_process': direct / by_process,
                            self.DIRECT_KEY: direct, **cpu_samples},
                   note=f'{timing}process {seconds:.2f}s, of which '
                        f'{empty.seconds:.2f}s with nothing to do: ratio '
                        f'{direct / by_process:.2f} by process; '
                        f'{self.DIRECT} {direct:.2f}s; concurrency '
                        f'{CONCURRENCY}; {self.mode_note(mapped_first)}',
                   cross='\n'.join(cpu_lines))

    def memory(self, size_mib, empty_peak):
        container = 'bench-memory'
        log(f'memory: writing one {size_mib} MiB object into Swift')
        self.conn.put_container(container)
        self.conn.put_object(container, 'big', Repeating(os.urandom(MiB),
                                                         size_mib),
                             content_length=size_mib * MiB)
        self.map(self.archive_profile(container))
        log('memory: daemon pass')
        run = self.sync_pass()
        seconds, peak = run.seconds, run.peak
        if not self.archived_all(container, ['big']):
            raise RuntimeError('memory: the object was not archived')
        growth = (peak - empty_peak) / 1024
        return Row('mem', f'daemon peak RSS archiving {size_mib} MiB',
                   peak / 1024, empty_peak / 1024, 'MiB',
                   MEMORY_TARGET_MIB, check='<=', value=growth,
                   value_unit='MiB more',
                   samples={'pass_s': seconds},
                   note=f'peak {peak / 1024:.1f} MiB vs '
                        f'{empty_peak / 1024:.1f} MiB in a pass with '
                        f'nothing to do; '
                        f'{size_mib * MiB / seconds / 1e6:.0f} MB/s')

    def walk(self, rows, empty):
        container = 'bench-walk'
        names = [f'row-{i:08d}' for i in range(rows)]
        log(f'walk: writing {rows} objects into Swift')
        self.put_many(container, names, b'x' * 64)
        # sync mode through the counting proxy: everything uploaded once
        self.map(self.aio.profile(self.account, container,
                                  aws_endpoint=self.counter.url))
        # one pass walks the whole container, however long it takes (the
        # default container_time of 60 s would split a big one into turns)
        self.aio.configure_sync(container_time=86400)
        log('walk: first pass (uploads every row)')
        self.sync_pass()
        # forget the progress: the next pass walks every row again, and
        # every row is already up to date
        status_dir = self.aio.sync_status_dir(self.aio.container_nodes[0])
        shutil.rmtree(status_dir, ignore_errors=True)
        mark = self.counter.count()
        log('walk: second pass (nothing to do)')
        run = self.sync_pass()
        seconds, peak = run.seconds, run.peak
        calls = self.counter.since(mark)
        per_row = len(calls) / rows
        walk_s = max(seconds - empty, 1e-3)
        kinds = {}
        for method, _path in calls:
            kinds[method] = kinds.get(method, 0) + 1
        # and with the progress kept, a pass over the same rows
        mark = self.counter.count()
        kept_s = self.sync_pass().seconds
        kept_calls = len(self.counter.since(mark))
        return Row('walk', f'walk of {rows} up-to-date rows',
                   rows / walk_s, None, 'rows/s', 0.01, check='<=',
                   value=per_row, value_unit='S3 calls/row',
                   samples={'pass_s': seconds, 'calls': kinds,
                            'peak_rss_mib': peak / 1024,
                            'kept_progress_calls': kept_calls,
                            'kept_progress_pass_s': kept_s},
                   note=f'progress reset: {len(calls)} S3 requests '
                        f'{kinds}, peak RSS {peak / 1024:.1f} MiB, pass '
                        f'{seconds:.2f}s; progress kept: {kept_calls} S3 '
                        f'requests, pass {kept_s:.2f}s')


def print_table(rows):
    print(f'{"figure":<44} {"measured":>10} {"limit":>10} {"unit":>7} '
          f'{"ratio":>6} {"value":>8}  target')
    for row in rows:
        limit = f'{row.limit:10.1f}' if row.limit is not None else \
            f'{"-":>10}'
        ratio = f'{row.ratio:6.2f}' if row.ratio is not None else \
            f'{"-":>6}'
        value = row.value if row.value is not None else 0.0
        print(f'{row.title:<44} {row.measured:10.1f} {limit} '
              f'{row.unit:>7} {ratio} {value:8.2f}  {row.check} '
              f'{row.target:g} {row.value_unit}'
              f'{"" if row.met is not False else "  NOT MET"}')
        print(f'    {row.note}')
        for line in row.cross.splitlines():
            print(f'    {line}')


def finish(rows, json_path=None):
    """Print the table (and write ``json_path``); the exit status: 0 when
    every target was met."""
    print_table(rows)
    if json_path:
        with open(json_path, 'w') as fp:
            json.dump({'rows': [r.as_dict() for r in rows]}, fp, indent=1)
    return 0 if all(r.met is not False for r in rows) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='small sizes: 2 x 16 MiB, 200 small objects, '
                             '128 MiB for memory, 500 rows')
    parser.add_argument('--large-mib', type=int, default=64)
    parser.add_argument('--large-count', type=int, default=3)
    parser.add_argument('--count', type=int, default=500,
                        help='4 KiB objects (the issue names 10,000)')
    parser.add_argument('--first-walk', action='store_true',
                        help='small objects: written before their '
                        'container is mapped (a first walk: a HEAD per '
                        'object), not into a container the daemon walks')
    parser.add_argument('--sync-mode', action='store_true',
                        help='large/small objects in sync mode (uploaded, '
                        'the local copy kept) instead of archive mode')
    parser.add_argument('--big-mib', type=int, default=1024)
    parser.add_argument('--rows', type=int, default=2000)
    parser.add_argument('--migrate-rows', type=int, default=20000,
                        help='rows of the first walk after a migration '
                        '(the issue names 1,000,000)')
    parser.add_argument('--only', action='append',
                        choices=('large', 'small', 'mem', 'walk',
                                 'migrate'),
                        help='run only these figures (repeatable)')
    parser.add_argument('--json', help='write the rows to this file')
    parser.add_argument('--keep-state', action='store_true')
    args = parser.parse_args(argv)
    if args.quick:
        args.large_mib, args.large_count = 16, 2
        args.count, args.big_mib, args.rows = 200, 128, 500
        args.migrate_rows = 2000
    only = set(args.only or ('large', 'small', 'mem', 'walk', 'migrate'))
    bench = SyncBench(args)
    rows = []
    try:
        bench.start()
        empty = bench.baseline()
        verb = 'sync' if args.sync_mode else 'archive'
        if 'large' in only:
            rows.append(bench.throughput(
                'large', f'{verb} {args.large_mib} MiB objects',
                args.large_count, args.large_mib * MiB, 'MB/s',
                LARGE_TARGET, empty))
        if 'small' in only:
            rows.append(bench.throughput(
                'small', f'{verb} {args.count} x 4 KiB objects',
                args.count, SMALL_SIZE, 'obj/s', SMALL_TARGET, empty,
                mapped_first=not args.first_walk))
        if 'mem' in only:
            rows.append(bench.memory(args.big_mib, empty.peak))
        if 'walk' in only:
            rows.append(bench.walk(args.rows, empty.seconds))
        if 'migrate' in only:
            rows.append(bench.migrate(args.migrate_rows, empty))
    finally:
        bench.stop()
    return finish(rows, args.json)


if __name__ == '__main__':
    sys.exit(main())
