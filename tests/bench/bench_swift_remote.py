"""Archived GET throughput from a remote Swift cluster (issue 14).

Starts an all-in-one cluster whose archive is a second Swift cluster
(``Cluster(s3_backend='swift')``), archives one object (64 MiB; 4 MiB with
``--quick``) into the remote container of a mapped container, and reads
it whole, in the same run and in rotating order:

* ``shunt``: through the local proxy (the shunt's remote-Swift read path:
  local 404, then one remote GET streamed to the client);
* ``swiftclient``: python-swiftclient's ``get_object`` of the same remote
  object (a warm ``Connection``, ``resp_chunk_size`` 1 MiB), the
  reference of issue 14 (target: shunt / swiftclient >= 0.85);
* ``http``: the same remote GET with a bare HTTP client reading into one
  reused buffer, as the shunt's reads are measured: the stricter
  reference (no client-library cost on the direct side).

Each figure is the median of per-round ratios (one round reads once in
each way); MB/s medians and their spread are printed too, and the CPU
seconds each process of both clusters (and the reading client) spent per
read, by way: from them a **machine bound**, the best ratio the shunt
could reach on this machine's cores with that CPU (its read's CPU spread
over every core, or its busiest process's, whichever is longer, against
the swiftclient read's median time; and against the swiftclient read's
own CPU-limited time, the ratio left when both saturate the machine).
With ``--link RATE`` (tc syntax: ``1gbit``) the remote cluster's proxy
port is behind a link of that bandwidth each way
(:mod:`tests.bench.port_link`), as across a network between two
clusters: every way reads through it. Usage::

    python -m tests.bench.bench_swift_remote [--quick] [--rounds N]
        [--size MIB] [--link RATE] [--json PATH]

Run it alone on a quiet machine: every way shares the two cores with the
servers it measures.
"""

import argparse
import contextlib
import json
import os
import resource
import sys
import time
import urllib.parse

from tests.bench.common import (
    Client,
    MiB,
    _descendants,
    _proc_cpu,
    loadavg,
    mbps,
    median,
    paired_ratios,
    spread,
)

ACCOUNT = 'AUTH_test'
CONTAINER = 'bench-remote'
NAME = 'obj'
TARGET = 0.85
WAYS = ('shunt', 'swiftclient', 'http')


def _setup(cluster, size):
    conn = cluster.swift_conn()
    conn.put_container(CONTAINER)
    conn.close()
    cluster.write_mappings([cluster.profile(ACCOUNT, CONTAINER)])
    block = os.urandom(min(size, 8 * MiB))
    body = (block * (size // len(block) + 1))[:size]
    cluster.archive_object(ACCOUNT, CONTAINER, NAME, body)


def _readers(cluster):
    """``{way: read() -> (bytes, seconds)}`` on warm connections."""
    remote = cluster.remote
    url, token = cluster.token()
    shunt = Client(cluster.ports['proxy'], token)
    shunt_path = f'{urllib.parse.urlsplit(url).path}/{CONTAINER}/{NAME}'
    rconn = remote.conn()
    rconn.head_account()  # authenticate once
    rcontainer = remote.container_for(ACCOUNT, CONTAINER)
    http = Client(remote.port('proxy'), rconn.token)
    http_path = (f'{urllib.parse.urlsplit(rconn.url).path}/'
                 f'{urllib.parse.quote(rcontainer)}/{NAME}')

    def via(client, path):
        start = time.perf_counter()
        status, got, _, _ = client.get(path)
        if status != 200:
            raise RuntimeError(f'GET {path}: {status}')
        return got, time.perf_counter() - start

    def swiftclient():
        start = time.perf_counter()
        _, body = rconn.get_object(rcontainer, NAME, resp_chunk_size=MiB)
        got = sum(len(chunk) for chunk in body)
        return got, time.perf_counter() - start

    readers = {'shunt': lambda: via(shunt, shunt_path),
               'swiftclient': swiftclient,
               'http': lambda: via(http, http_path)}
    return readers, (shunt, http)


class Parties:
    """CPU seconds so far of each cluster process (with its workers) and
    of this process (``client``)."""

    def __init__(self, cluster):
        self.pids = {name: [proc.pid] + _descendants(proc.pid)
                     for name, proc in cluster.procs.items()
                     if proc.running()}

    def cpu(self):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out = {name: sum(_proc_cpu(pid) for pid in pids)
               for name, pids in self.pids.items()}
        out['client'] = usage.ru_utime + usage.ru_stime
        return out


def measure(cluster, size, rounds):
    """``(rates, cpu)``: MB/s of each read by way, and CPU seconds by way
    and party summed over the rounds."""
    readers, clients = _readers(cluster)
    rates = {way: [] for way in WAYS}
    cpu = {way: {} for way in WAYS}
    parties = Parties(cluster)
    try:
        for way in WAYS:  # warm-up: connections, tokens, page cache
            readers[way]()
        for rnd in range(rounds):
            order = WAYS[rnd % len(WAYS):] + WAYS[:rnd % len(WAYS)]
            for way in order:
                before = parties.cpu()
                got, secs = readers[way]()
                after = parties.cpu()
                if got != size:
                    raise RuntimeError(f'{way}: read {got} of {size} bytes')
                rates[way].append(mbps(got, secs))
                for name, used in after.items():
                    cpu[way][name] = cpu[way].get(name, 0.0) + \
                        used - before.get(name, 0.0)
    finally:
        for client in clients:
            client.close()
    return rates, cpu


def cpu_report(rates, cpu, size, rounds):
    """Lines of CPU per read by way and the shunt's machine bound, and
    their samples."""
    cores = os.cpu_count() or 1
    per_read = {way: {name: used / rounds for name, used in parties.items()
                      if used / rounds >= 0.005}
                for way, parties in cpu.items()}
    lines = []
    for way in WAYS:
        parties = sorted(per_read[way].items(), key=lambda item: -item[1])
        lines.append(f'  cpu s per read, {way:12} '
                     f'{sum(per_read[way].values()):.2f}: ' + ', '.join(
                         f'{name} {used:.2f}' for name, used in parties))
    def cpu_wall(way):
        # a read's CPU spread over every core, or its busiest process's
        used = per_read[way]
        return max(max(used.values(), default=0.0),
                   sum(used.values()) / cores)
    bound_s = cpu_wall('shunt')
    direct_s = size / (median(rates['swiftclient']) * 1e6)
    bound = direct_s / bound_s if bound_s else None
    # both ways as fast as their CPU allows: what the extra hop's CPU
    # leaves of the ratio when the machine is saturated
    both = cpu_wall('swiftclient') / bound_s if bound_s else None
    if bound is not None:
        lines.append(f'  machine bound ({cores} cores): shunt / swiftclient '
                     f'<= {bound:.2f} (the shunt read\'s CPU takes at least '
                     f'{bound_s:.3f}s here; swiftclient reads in '
                     f'{direct_s:.3f}s); {both:.2f} with both ways as fast '
                     f'as their CPU allows ({cpu_wall("swiftclient"):.3f}s '
                     f'for swiftclient)')
    return lines, {'cpu_per_read': per_read, 'bound_ratio': bound,
                   'cpu_bound_ratio': both}


def report(measured, size, rounds, link=None):
    rates, cpu = measured
    out = {'size': size, 'rounds': rounds, 'loadavg': loadavg(),
           'link': link, 'mbps': {}, 'ratios': {}}
    across = f', across a {link} link' if link else ''
    print(f'\nArchived GET from a remote Swift{across}, {size // MiB} MiB, '
          f'{rounds} rounds (load {out["loadavg"][0]:.2f}):')
    for way in WAYS:
        mid = median(rates[way])
        out['mbps'][way] = rates[way]
        print(f'  {way:12} {mid:8.1f} MB/s  (spread '
              f'{spread(rates[way]):.0%})')
    for ref in ('swiftclient', 'http'):
        ratios = paired_ratios(rates['shunt'], rates[ref])
        out['ratios'][ref] = ratios
        mid = median(ratios)
        verdict = ''
        if ref == 'swiftclient':
            verdict = ' OK' if mid >= TARGET else f' BELOW {TARGET}'
        print(f'  shunt / {ref:12} {mid:.3f} (median of {len(ratios)} '
              f'paired ratios, spread {spread(ratios):.0%}){verdict}')
    lines, samples = cpu_report(rates, cpu, size, rounds)
    print('\n'.join(lines))
    out.update(samples)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='4 MiB, 3 rounds: does it work?')
    parser.add_argument('--size', type=int, default=None, metavar='MIB')
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--link', default=None, metavar='RATE',
                        help='the remote proxy behind a link of RATE '
                        '(tc syntax: 1gbit) each way')
    parser.add_argument('--json', default=None, metavar='PATH',
                        help='also write the samples there')
    args = parser.parse_args(argv)
    size = (args.size or (4 if args.quick else 64)) * MiB
    rounds = args.rounds or (3 if args.quick else 7)

    from shunt.tools.aio import Cluster
    from tests.bench.port_link import PortLink, unavailable
    if args.link and unavailable():
        parser.error(f'--link: {unavailable()}')
    cluster = Cluster(reload_interval=0, s3_backend='swift',
                      keep_state_dir=bool(
                          os.environ.get('CLOUD_SHUNT_KEEP_STATE')))
    print('starting the cluster and its remote Swift...', flush=True)
    with cluster:
        _setup(cluster, size)
        link = PortLink(cluster.remote.port('proxy'), args.link) \
            if args.link else contextlib.nullcontext()
        with link:
            measured = measure(cluster, size, rounds)
        out = report(measured, size, rounds, args.link)
    if args.json:
        with open(args.json, 'w') as fp:
            json.dump(out, fp, indent=2)
    return 0 if median(out['ratios']['swiftclient']) >= TARGET else 1


if __name__ == '__main__':
    sys.exit(main())
