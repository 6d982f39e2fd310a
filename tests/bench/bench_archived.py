"""Figures 3 to 6: serving archived objects, against reading the bucket
directly.

3.  GET throughput of one archived object (64 MiB, 1 GiB) through the
    proxy, against boto3 reading the same key from the same S3 endpoint in
    the same run; runs alternate proxy/direct, the figure is the median of
    the per-pair ratios.
4.  Time to first byte of a small archived object through the proxy,
    against the sum of a local GET through the same proxy (the local 404
    the shunt waits for costs about as much) and one direct S3 GET of the
    key (boto3, warm connection); medians over many rounds, in rotating
    order. The S3 requests per archived GET are counted at the counting
    proxy: exactly one GetObject, no HEAD.
5.  Peak memory growth of the proxy worker while it serves the 1 GiB
    object: VmHWM (reset through /proc/PID/clear_refs before the request)
    minus VmRSS before it.
6.  64 concurrent GETs of archived 8 MiB objects through one proxy worker,
    against 64 threads reading the same keys with boto3 directly.

References (no target): boto3 through the counting proxy, which moves
response bytes with splice(2), measures what one more loopback hop costs
on this machine whatever the hop does (``3r``, ``6r``): the ceiling of
any proxy here. ``3a-64k`` and ``6-64k`` repeat 3a and 6 with the proxy
restarted with ``network_chunk_size = 65536`` (Swift's usual size; the
shunt's default is 1048576): the proxy's CPU per byte, and so its
throughput on a busy machine, depends mostly on how many chunks it
moves.
"""

import threading
import time

from tests.bench.common import (
    GiB,
    MiB,
    Row,
    cpu_seconds,
    mbps,
    median,
    memory_kib,
    paired_ratios,
    reset_peak_rss,
    spread,
)
from tests.bench.context import ARCHIVE, COUNTED, LOCAL

READ_CHUNK = MiB
SMALL = 4096
CONCURRENCY = 64
CONC_OBJECTS = 16
CONC_SIZE = 8 * MiB


def _random_block(size):
    import os
    return os.urandom(size)


def setup(bench, sizes):
    t0 = time.monotonic()
    block = _random_block(64 * MiB)
    for size in sizes:
        body = block[:size] if size <= len(block) else \
            block * (size // len(block))
        bench.archive(ARCHIVE, f'obj-{size}', body)
        del body
    for i in range(CONC_OBJECTS):
        bench.archive(ARCHIVE, f'conc-{i}',
                      block[i * 1024:i * 1024 + CONC_SIZE])
    small = block[:SMALL]
    bench.archive(ARCHIVE, 'small', small)
    bench.archive(COUNTED, 'small-archived', small)
    bench.put_local(LOCAL, {'ttfb-local': small})
    bench.log(f'  archived objects uploaded in '
              f'{time.monotonic() - t0:.1f}s')


def key_of(bench, container, name):
    from shunt.core.layout import object_key
    return object_key(bench.account, container, name)


def direct_read(s3, bucket, key):
    """(bytes, seconds, ttfb) of a boto3 GetObject read to the end."""
    start = time.perf_counter()
    resp = s3.get_object(Bucket=bucket, Key=key)
    body = resp['Body']
    got = len(body.read(1))
    ttfb = time.perf_counter() - start
    for chunk in body.iter_chunks(READ_CHUNK):
        got += len(chunk)
    body.close()
    return got, time.perf_counter() - start, ttfb


def proxy_read(client, path):
    status, got, ttfb, total = client.get(path)
    if status != 200:
        raise RuntimeError(f'GET {path} through the proxy: {status}')
    return got, total, ttfb


# -- 3 and 5: one object at a time ----------------------------------------

def throughput(bench, size, rounds, pid, relay_s3=None, container=ARCHIVE,
               endpoint=None):
    """MB/s of whole reads of ``obj-<size>`` in ``container``: through the
    proxy, directly with boto3 (from ``endpoint``, the cluster's S3 by
    default) and (with ``relay_s3``) with boto3 through the zero-copy
    relay, in rotating order; plus the proxy worker's peak RSS growth
    (MiB) and CPU (s/GB) for each proxy read."""
    bucket = bench.cluster.bucket
    key = key_of(bench, container, f'obj-{size}')
    path = bench.path(container, f'obj-{size}')
    client = bench.client()
    ways = ['proxy', 'direct'] + (['relay'] if relay_s3 else [])
    rates = {way: [] for way in ways}
    growth, cpu = [], []

    def read(way):
        if way == 'direct':
            return direct_read(bench.s3(endpoint=endpoint), bucket,
                               key)[:2]
        if way == 'relay':
            return direct_read(relay_s3, bucket, key)[:2]
        reset_peak_rss(pid)
        before = memory_kib(pid)['VmRSS']
        cpu0 = cpu_seconds(pid)
        got, secs, _ = proxy_read(client, path)
        cpu.append((cpu_seconds(pid) - cpu0) / (got / 1e9))
        growth.append((memory_kib(pid)['VmHWM'] - before) / 1024)
        return got, secs

    try:
        for way in ways:  # connections, caches, moto's spool file
            read(way)
        del growth[:], cpu[:]
        for rnd in range(rounds):
            for way in ways[rnd % len(ways):] + ways[:rnd % len(ways)]:
                got, secs = read(way)
                if got != size:
                    raise RuntimeError(f'{way}: read {got} of {size} '
                                       f'bytes')
                rates[way].append(mbps(got, secs))
    finally:
        client.close()
    return rates, growth, cpu


# -- 4: time to first byte ---------------------------------------------------

def ttfb(bench, rounds):
    s3 = bench.s3()
    bucket = bench.cluster.bucket
    key = key_of(bench, ARCHIVE, 'small')
    archived = bench.path(ARCHIVE, 'small')
    local = bench.path(LOCAL, 'ttfb-local')
    client = bench.client()
    samples = {'archived': [], 'local': [], 's3': []}

    def one(which):
        if which == 'archived':
            return proxy_read(client, archived)[2]
        if which == 'local':
            return proxy_read(client, local)[2]
        return direct_read(s3, bucket, key)[2]

    order = ['archived', 'local', 's3']
    try:
        for which in order * 3:  # warm-up
            one(which)
        for rnd in range(rounds):
            rotated = order[rnd % 3:] + order[:rnd % 3]
            for which in rotated:
                samples[which].append(one(which) * 1000)
    finally:
        client.close()
    return samples


def remote_calls_per_get(bench, count):
    client = bench.client()
    path = bench.path(COUNTED, 'small-archived')
    try:
        proxy_read(client, path)  # the first may build/warm a connection
        mark = bench.counting.count()
        for _ in range(count):
            proxy_read(client, path)
        # the counting proxy parses asynchronously: give it a moment
        time.sleep(0.2)
        calls = bench.counting.since(mark)
    finally:
        client.close()
    return calls


# -- 6: concurrency -----------------------------------------------------------

def _run_threads(target, n, seconds):
    """Run ``target(i, deadline, totals)`` over and over in each of ``n``
    threads until ``deadline`` (a failed request is recorded and the
    thread goes on); returns (bytes, seconds, errors)."""
    totals = [0] * n
    errors = []
    start = time.perf_counter()
    deadline = start + seconds

    def wrapped(i):
        for _ in range(100000):
            if time.perf_counter() >= deadline:
                return
            try:
                target(i, deadline, totals)
            except Exception as err:  # reported, not hidden
                errors.append(repr(err))
    threads = [threading.Thread(target=wrapped, args=(i,), daemon=True)
               for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return sum(totals), time.perf_counter() - start, errors


def concurrent_proxy(bench, seconds, container=ARCHIVE):
    clients = [bench.client() for _ in range(CONCURRENCY)]

    def reader(i, deadline, totals):
        """One GET (keep-alive: the connection stays for the next one)."""
        client = clients[i]
        path = bench.path(container, f'conc-{i % CONC_OBJECTS}')
        try:
            conn = client._connect()
            conn.request('GET', path, headers={'X-Auth-Token': bench.token})
            resp = conn.getresponse()
            if resp.status != 200:
                resp.read()
                raise RuntimeError(f'GET {path}: {resp.status}')
            while True:
                n = resp.readinto(client.buf)
                if not n:
                    return
                totals[i] += n
                if time.perf_counter() >= deadline:
                    client.close()  # the rest of the body is not wanted
                    return
        except Exception:
            client.close()
            raise
    try:
        return _run_threads(reader, CONCURRENCY, seconds)
    finally:
        for client in clients:
            client.close()


def concurrent_direct(bench, seconds, endpoint=None, container=ARCHIVE):
    s3 = bench.s3(pool=CONCURRENCY, endpoint=endpoint)
    bucket = bench.cluster.bucket
    keys = [key_of(bench, container, f'conc-{i}')
            for i in range(CONC_OBJECTS)]

    def reader(i, deadline, totals):
        """One GetObject."""
        body = s3.get_object(Bucket=bucket, Key=keys[i % CONC_OBJECTS])[
            'Body']
        try:
            for chunk in body.iter_chunks(READ_CHUNK):
                totals[i] += len(chunk)
                if time.perf_counter() >= deadline:
                    return
        finally:
            body.close()
    return _run_threads(reader, CONCURRENCY, seconds)


def concurrency(bench, rounds, seconds, relay=False, container=ARCHIVE,
                endpoint=None):
    """Aggregate MB/s of the proxy and of direct boto3 (and of boto3
    through the zero-copy relay), in rotating order, reading the objects
    of ``container`` (from ``endpoint`` directly); and the proxy
    worker's CPU seconds per GB while it served."""
    ways = {
        'proxy': lambda bench, seconds: concurrent_proxy(
            bench, seconds, container),
        'direct': lambda bench, seconds: concurrent_direct(
            bench, seconds, endpoint, container)}
    if relay:
        ways['relay'] = lambda bench, seconds: concurrent_direct(
            bench, seconds, endpoint=bench.counting.url)
    names = list(ways)
    rates = {name: [] for name in names}
    errors, cpu = [], []
    pid = bench.proxy_pid(True)
    for func in ways.values():  # warm-up: connections on every path
        func(bench, 1)
    for rnd in range(rounds):
        for name in names[rnd % len(names):] + names[:rnd % len(names)]:
            cpu0 = cpu_seconds(pid)
            got, secs, errs = ways[name](bench, seconds)
            if name == 'proxy':
                cpu.append((cpu_seconds(pid) - cpu0) / (got / 1e9))
            errors += errs
            rates[name].append(mbps(got, secs))
    return rates, errors, cpu


# -- all of it --------------------------------------------------------------

SMALL_CHUNK = 65536


def _concurrency_rows(key, rates, errors, cpu, rounds, secs, growth,
                      suffix='', target=0.8):
    ratios = paired_ratios(rates['proxy'], rates['direct'])
    rows = [Row(
        key=key, title=f'{CONCURRENCY} concurrent archived GETs, one proxy '
                       f'worker{suffix}',
        measured=median(rates['proxy']), limit=median(rates['direct']),
        unit='MB/s', target=target, check='>=', ratio=median(ratios),
        spread=spread(ratios), noisy=spread(ratios) > 0.05 or rounds < 2,
        samples=dict(rates, ratios=ratios, errors=errors[:10],
                     proxy_rss_growth_mib=growth, proxy_cpu_s_per_gb=cpu),
        cross=f'proxy CPU {median(cpu):.2f} s/GB, RSS +{growth:.0f} MiB',
        note=f'{CONC_OBJECTS} objects of {CONC_SIZE // MiB} MiB, {rounds} '
             f'rotating rounds of {secs}s; boto3 direct with '
             f'{CONCURRENCY} threads; {len(errors)} errors')]
    if 'relay' in rates:
        ratios = paired_ratios(rates['relay'], rates['direct'])
        rows.append(Row(
            key=f'{key}r', title=f'reference: {CONCURRENCY} boto3 threads '
                                 f'through the zero-copy relay',
            measured=median(rates['relay']), limit=median(rates['direct']),
            unit='MB/s', target=None, ratio=median(ratios),
            spread=spread(ratios), noisy=spread(ratios) > 0.05 or
            rounds < 2, samples={'relay': rates['relay'], 'ratios': ratios},
            note='what one more loopback hop costs at this concurrency'))
    return rows


def _label(size):
    return f'{size // GiB} GiB' if size >= GiB else f'{size // MiB} MiB'


def run(bench):
    quick = bench.quick
    # --quick: a 256 MiB "big" object (moto ingests 1 GiB in ~20 s)
    big = 256 * MiB if quick else GiB
    sizes = (64 * MiB, big)
    setup(bench, sizes)
    pid = bench.proxy_pid(True)
    relay = bench.s3(endpoint=bench.counting.url)
    rows = []
    t0 = time.monotonic()

    rounds = {64 * MiB: 3 if quick else 9, big: 2 if quick else 3}
    growths = {}
    for size in sizes:
        label = _label(size)
        rates, growth, cpu = throughput(
            bench, size, rounds[size], pid,
            relay_s3=relay if size == 64 * MiB else None)
        growths[label] = growth
        ratios = paired_ratios(rates['proxy'], rates['direct'])
        rows.append(Row(
            key='3a' if size == 64 * MiB else '3b',
            title=f'archived GET throughput, {label}',
            measured=median(rates['proxy']), limit=median(rates['direct']),
            unit='MB/s', target=0.85, check='>=', ratio=median(ratios),
            spread=spread(ratios), noisy=spread(ratios) > 0.05,
            samples=dict(rates, ratios=ratios, proxy_cpu_s_per_gb=cpu),
            cross=f'proxy CPU {median(cpu):.2f} s/GB',
            note=f'boto3 direct; median of {rounds[size]} rotating '
                 f'rounds'))
        bench.log(f'  {label}: ' + ', '.join(
            f'{way} {median(v):.0f} MB/s' for way, v in rates.items()))
        if 'relay' in rates:
            ratios = paired_ratios(rates['relay'], rates['direct'])
            rows.append(Row(
                key='3r', title=f'reference: zero-copy TCP relay, {label}',
                measured=median(rates['relay']),
                limit=median(rates['direct']), unit='MB/s', target=None,
                ratio=median(ratios), spread=spread(ratios),
                noisy=spread(ratios) > 0.05,
                samples={'relay': rates['relay'], 'ratios': ratios},
                note='boto3 through a splice(2) relay: what one more '
                     'loopback hop costs here, whatever the proxy does'))

    worst = max(growths[_label(big)])
    rows.append(Row(
        key='5', title=f'proxy peak RSS growth serving {_label(big)}',
        measured=worst, limit=32.0, unit='MiB', target=32.0,
        check='<=', value=worst, value_unit='MiB', ratio=worst / 32.0,
        samples={'growth_mib': growths},
        note=f'VmHWM - VmRSS of the proxy worker, worst of '
             f'{len(growths[_label(big)])} GETs (64 MiB GETs: up to '
             f'{max(growths["64 MiB"]):.1f} MiB)'))

    samples = ttfb(bench, 15 if quick else 60)
    arch, local, s3 = (median(samples[k]) for k in ('archived', 'local',
                                                     's3'))
    rows.append(Row(
        key='4', title='TTFB, 4 KiB archived GET vs local GET + S3 GET',
        measured=arch, limit=local + s3, unit='ms', target=3.0,
        check='<=', value=arch - (local + s3), value_unit='ms added',
        ratio=(local + s3) / arch if arch else None,
        spread=spread(samples['archived']), noisy=True,
        samples=samples,
        note=f'medians of {len(samples["archived"])}: local GET '
             f'{local:.2f} ms + direct S3 GET {s3:.2f} ms'))

    count = 10 if quick else 50
    calls = remote_calls_per_get(bench, count)
    kinds = sorted({c[0] for c in calls})
    rows.append(Row(
        key='4r', title='S3 requests per archived GET',
        measured=len(calls) / count, limit=1.0, unit='requests',
        target=1.0, check='==', value=len(calls) / count,
        value_unit='requests',
        samples={'requests': [' '.join(c) for c in calls[:10]]},
        note=f'{len(calls)} requests ({", ".join(kinds) or "none"}) for '
             f'{count} GETs, counted at the counting proxy'))

    conc_rounds, conc_secs = (1, 3) if quick else (3, 6)
    reset_peak_rss(pid)
    rss0 = memory_kib(pid)['VmRSS']
    rates, errors, cpu = concurrency(bench, conc_rounds, conc_secs,
                                     relay=True)
    conc_growth = (memory_kib(pid)['VmHWM'] - rss0) / 1024
    rows += _concurrency_rows('6', rates, errors, cpu, conc_rounds,
                              conc_secs, conc_growth)
    bench.log('  concurrency: ' + ', '.join(
        f'{way} {median(v):.0f} MB/s' for way, v in rates.items()))

    # the same with smaller reads from the bucket (a filter option): what
    # the default of 1048576 gains over Swift's usual 65536
    bench.cluster.restart_proxy(
        filter_conf={'network_chunk_size': str(SMALL_CHUNK)})
    try:
        pid = bench.proxy_pid(True)
        rates, growth, cpu = throughput(bench, 64 * MiB, rounds[64 * MiB],
                                        pid)
        ratios = paired_ratios(rates['proxy'], rates['direct'])
        rows.append(Row(
            key='3a-64k', title=f'3a with network_chunk_size='
                                f'{SMALL_CHUNK}',
            measured=median(rates['proxy']), limit=median(rates['direct']),
            unit='MB/s', target=None, ratio=median(ratios),
            spread=spread(ratios), noisy=spread(ratios) > 0.05,
            samples=dict(rates, ratios=ratios, proxy_cpu_s_per_gb=cpu,
                         growth_mib=growth),
            cross=f'proxy CPU {median(cpu):.2f} s/GB',
            note='the proxy restarted with the smaller chunk'))
        reset_peak_rss(pid)
        rss0 = memory_kib(pid)['VmRSS']
        rates, errors, cpu = concurrency(bench, conc_rounds, conc_secs)
        conc_growth = (memory_kib(pid)['VmHWM'] - rss0) / 1024
        rows += _concurrency_rows('6-64k', rates, errors, cpu, conc_rounds,
                                  conc_secs, conc_growth,
                                  f' (network_chunk_size={SMALL_CHUNK})',
                                  target=None)
    finally:
        bench.cluster.restart_proxy()
    bench.log(f'  archived: {time.monotonic() - t0:.0f}s')
    return rows
