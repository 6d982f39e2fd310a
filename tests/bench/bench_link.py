"""Figures 3L and 6L: archived GETs when the bucket is across a link.

Figures 3 and 6 put the client, the proxy and the S3 endpoint on the same
two cores and loopback, where the limit is CPU: the proxy's hop is paid in
the very cycles that moto and the client need (the zero-copy relay
reference shows that no proxy escapes it). In production the bucket is
across a network and the limit is the link. These two figures measure
that case: the bucket of container ``bench-link`` is served by a moto in
a network namespace behind a veth pair whose S3 side sends through a
token bucket of ``RATE`` (:mod:`tests.bench.link`); boto3 reads the same
keys across the same link.

3L.  GET of one 64 MiB archived object (and of the 1 GiB one in a full
     run), through the proxy against boto3 directly, alternating.
6L.  64 concurrent GETs of 8 MiB objects through one proxy worker against
     64 boto3 threads, sharing the link.

Skipped, with the reason in the table, where the link cannot be built
(not root, no iproute2).
"""

import os
import time

from tests.bench import bench_archived as archived
from tests.bench.common import GiB, MiB, Row, median, paired_ratios, spread
from tests.bench.link import Link, unavailable

LINK = 'bench-link'
RATE = '2gbit'
RATE_MB_S = 250.0


def _upload(bench, endpoint, sizes):
    s3 = bench.s3(endpoint=endpoint)
    bucket = bench.cluster.bucket
    s3.create_bucket(Bucket=bucket)
    block = os.urandom(64 * MiB)
    for size in sizes:
        body = block * max(1, size // len(block))
        s3.put_object(Bucket=bucket, Key=archived.key_of(
            bench, LINK, f'obj-{size}'), Body=body[:size])
        del body
    for i in range(archived.CONC_OBJECTS):
        s3.put_object(
            Bucket=bucket, Key=archived.key_of(bench, LINK, f'conc-{i}'),
            Body=block[i * 1024:i * 1024 + archived.CONC_SIZE])


def _skipped(why):
    return [Row(key=key, title=title, measured=None, limit=None,
                unit='MB/s', target=target, note=f'skipped: {why}')
            for key, title, target in (
                ('3L', 'archived GET across a link', 0.85),
                ('6L', '64 concurrent archived GETs across a link', 0.8))]


def run(bench):
    why = unavailable()
    if why:
        bench.log(f'  link: skipped ({why})')
        return _skipped(why)
    quick = bench.quick
    sizes = (64 * MiB,) if quick else (64 * MiB, GiB)
    link = Link(os.path.join(bench.cluster.log_dir, 'link-s3.log'),
                rate=RATE)
    rows = []
    t0 = time.monotonic()
    with link:
        _upload(bench, link.endpoint, sizes)
        bench.extra_profiles = [bench.cluster.profile(
            bench.account, LINK, aws_endpoint=link.endpoint)]
        bench.write_mappings()
        bench.cluster.restart_proxy()
        try:
            pid = bench.proxy_pid(True)
            for size in sizes:
                label = f'{size // MiB} MiB' if size < GiB else '1 GiB'
                rounds = 3 if quick or size >= GiB else 5
                rates, _, cpu = archived.throughput(
                    bench, size, rounds, pid, container=LINK,
                    endpoint=link.endpoint)
                ratios = paired_ratios(rates['proxy'], rates['direct'])
                rows.append(Row(
                    key='3L' if size < GiB else '3L-1g',
                    title=f'archived GET across a {RATE} link, {label}',
                    measured=median(rates['proxy']),
                    limit=median(rates['direct']), unit='MB/s',
                    target=0.85, ratio=median(ratios),
                    spread=spread(ratios), noisy=spread(ratios) > 0.05,
                    samples=dict(rates, ratios=ratios,
                                 proxy_cpu_s_per_gb=cpu),
                    cross=f'link {RATE_MB_S:.0f} MB/s; proxy CPU '
                          f'{median(cpu):.2f} s/GB',
                    note=f'boto3 direct across the same link; median of '
                         f'{rounds} rotating rounds'))
                bench.log(f'  link {label}: ' + ', '.join(
                    f'{way} {median(v):.0f} MB/s'
                    for way, v in rates.items()))
            conc_rounds, conc_secs = (1, 4) if quick else (3, 6)
            rates, errors, cpu = archived.concurrency(
                bench, conc_rounds, conc_secs, container=LINK,
                endpoint=link.endpoint)
            ratios = paired_ratios(rates['proxy'], rates['direct'])
            rows.append(Row(
                key='6L', title=f'{archived.CONCURRENCY} concurrent archived '
                                f'GETs across a {RATE} link',
                measured=median(rates['proxy']),
                limit=median(rates['direct']), unit='MB/s', target=0.8,
                ratio=median(ratios), spread=spread(ratios),
                noisy=spread(ratios) > 0.05 or conc_rounds < 2,
                samples=dict(rates, ratios=ratios, errors=errors[:10],
                             proxy_cpu_s_per_gb=cpu),
                cross=f'link {RATE_MB_S:.0f} MB/s; proxy CPU '
                      f'{median(cpu):.2f} s/GB',
                note=f'{archived.CONC_OBJECTS} objects of '
                     f'{archived.CONC_SIZE // MiB} MiB, {conc_rounds} '
                     f'rotating rounds of {conc_secs}s, one proxy worker; '
                     f'{len(errors)} errors'))
            bench.log('  link concurrency: ' + ', '.join(
                f'{way} {median(v):.0f} MB/s' for way, v in rates.items()))
        finally:
            bench.extra_profiles = []
            bench.write_mappings()
            bench.cluster.restart_proxy()
    bench.log(f'  link: {time.monotonic() - t0:.0f}s')
    return rows
