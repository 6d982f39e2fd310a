"""Figures 1 and 2: what the shunt costs on traffic it does not serve.

Requests/s of the same requests through the proxy with ``cloud_shunt``
and through the plain proxy (the same pipeline without it, on the same
backends; see :mod:`tests.bench.context`), measured with ``wrk`` (one
thread, 16 connections to one proxy worker). The two proxies are loaded
one after the other, the order flipping from pair to pair, in short runs
(the rest of the machine changes on a scale of seconds); the figure is
the median of the per-pair ratios with/without. (``--overhead-mode
simultaneous`` loads both at once instead, each by its own ``wrk``: the
same background for both, but the scheduler's share of the CPU between
the two proxies then counts too.) The proxy worker's CPU time per
request is read from /proc for both: less sensitive to whatever else the
machine is doing. Both proxies are restarted between blocks of pairs
(3 blocks in a full run): one process differs from the next by a few
percent whatever it runs (hash seed, memory layout), and a figure from
a single pair of processes would carry that difference. With ``py-spy``
installed, the proxy worker is also sampled under the same load and the
share of its CPU spent in the shunt's own frames (not in the middlewares
and the app it calls) is reported: the cost of the shunt, measured
directly.

1a. GET of a small local object in an unmapped container;
1b. JSON listing of an unmapped container (200 objects);
2.  GET of a small local object in a mapped container (the shunt looks
    the container up, passes the GET on, sees the 200 and returns it):
    the S3 endpoint of that container's profile is the counting proxy,
    which must see no request at all while this runs.
"""

import os
import shutil
import subprocess
import tempfile
import threading
import time

from tests.bench.common import (
    Row,
    cpu_seconds,
    median,
    paired_ratios,
    spread,
    wrk,
)
from tests.bench.context import COUNTED, LOCAL

SMALL = b'x' * 4096
LISTED = 200
CONNECTIONS = 16

WORKLOADS = (
    # key, title, container, object, query, target
    ('1a', 'unmapped: 4 KiB object GET', LOCAL, 'small', '', 0.97),
    ('1b', f'unmapped: container listing ({LISTED} objects)', LOCAL, None,
     'format=json', 0.97),
    ('2', 'mapped, object local: 4 KiB GET', COUNTED, 'small', '', 0.95),
)


def setup(bench):
    objects = {'small': SMALL}
    objects.update({f'item-{i:04d}': b'' for i in range(LISTED)})
    bench.put_local(LOCAL, objects)
    bench.put_local(COUNTED, {'small': SMALL})


def shunt_share(stacks_file, next_app='swift/common/middleware/slo.py'):
    """From py-spy's raw (collapsed) stacks: the fraction of samples
    spent in the shunt's frames and what they call, excluding everything
    under the next middleware (``slo``) and everything outside the
    shunt's call."""
    total = own = 0
    with open(stacks_file) as fp:
        for line in fp:
            stack, _, count = line.rstrip().rpartition(' ')
            if not count.isdigit():
                continue
            count = int(count)
            total += count
            frames = stack.split(';')
            first = next((i for i, f in enumerate(frames)
                          if '(shunt/' in f), None)
            if first is None:
                continue
            if any(next_app in f for f in frames[first:]):
                continue
            own += count
    return own / total if total else None, total


def profile(bench, url, seconds=4):
    """Sample the shunt proxy's worker with py-spy while ``wrk`` loads
    ``url``; returns (share of CPU in the shunt, samples) or None."""
    py_spy = shutil.which('py-spy')
    if not py_spy:
        return None
    pid = bench.proxy_pid(True)
    load = threading.Thread(target=wrk, args=(url, bench.auth_headers),
                            kwargs={'duration': seconds + 2,
                                    'connections': CONNECTIONS})
    load.start()
    fd, out = tempfile.mkstemp(suffix='.txt')
    os.close(fd)
    try:
        time.sleep(1)
        proc = subprocess.run(
            [py_spy, 'record', '--pid', str(pid), '--duration',
             str(seconds), '--rate', '250', '--format', 'raw', '--output',
             out, '--nonblocking'],
            capture_output=True, timeout=seconds + 60)
        if proc.returncode != 0:
            bench.log(f'  py-spy failed: {proc.stderr.decode()[-300:]}')
            return None
        return shunt_share(out)
    finally:
        load.join()
        os.unlink(out)


def _pair(bench, urls, pids, duration, mode, first=True):
    """One measurement of each proxy: ``wrk`` results and proxy worker
    CPU seconds, keyed by ``shunt`` (True/False). ``simultaneous``: both
    loaded at the same time, so whatever else the machine does at that
    moment hits both alike; ``alternate``: one after the other (the
    order given by ``first``)."""
    got, cpu = {}, {}
    cpu0 = {shunt: cpu_seconds(pid) for shunt, pid in pids.items()}

    def load(shunt):
        got[shunt] = wrk(urls[shunt], bench.auth_headers,
                         duration=duration, connections=CONNECTIONS)
        cpu[shunt] = cpu_seconds(pids[shunt]) - cpu0[shunt]

    if mode == 'simultaneous':
        threads = [threading.Thread(target=load, args=(shunt,))
                   for shunt in (True, False)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for shunt in ((True, False) if first else (False, True)):
            cpu0[shunt] = cpu_seconds(pids[shunt])
            load(shunt)
    missing = {True, False} - set(got)
    if missing:
        raise RuntimeError('wrk failed against the proxy '
                           f'{"with" if True in missing else "without"} '
                           f'the shunt')
    return got, cpu


def restart_both(bench):
    """New processes for both proxies (the plain one on a new port),
    warmed up on every workload; their worker pids."""
    bench.cluster.restart_proxy()
    bench.plain.stop()
    bench.start_plain_proxy()
    for _, _, container, obj, query, _ in WORKLOADS:
        for shunt in (True, False):
            wrk(bench.url(container, obj, query, shunt=shunt),
                bench.auth_headers, duration=1, connections=CONNECTIONS)
    return {shunt: bench.proxy_pid(shunt) for shunt in (True, False)}


def run(bench):
    quick = bench.quick
    # short runs, many pairs: the rest of the machine changes on a scale
    # of seconds
    pairs = 5 if quick else 15
    duration = 1 if quick else 2
    setup(bench)
    pids = {shunt: bench.proxy_pid(shunt) for shunt in (True, False)}
    rps = {(key, shunt): [] for key, *_ in WORKLOADS
           for shunt in (True, False)}
    cpu_us = {(key, shunt): [] for key, *_ in WORKLOADS
              for shunt in (True, False)}
    remote_calls = []
    mapped_gets = 0
    t0 = time.monotonic()
    for _key, _, container, obj, query, _ in WORKLOADS:
        for shunt in (True, False):
            mark = bench.counting.count()
            got = wrk(bench.url(container, obj, query, shunt=shunt),
                      bench.auth_headers, duration=1,
                      connections=CONNECTIONS)
            if shunt and container == COUNTED:
                remote_calls += bench.counting.since(mark)
                mapped_gets += got['requests']
    mode = getattr(bench, 'overhead_mode', 'alternate')
    blocks = 1 if quick else 3
    for pair in range(pairs):
        if pair and pair % (pairs // blocks) == 0:
            pids = restart_both(bench)
        for key, _, container, obj, query, _ in WORKLOADS:
            urls = {shunt: bench.url(container, obj, query, shunt=shunt)
                    for shunt in (True, False)}
            mark = bench.counting.count()
            got, cpu = _pair(bench, urls, pids, duration, mode,
                             first=pair % 2 == 0)
            if container == COUNTED:
                remote_calls += bench.counting.since(mark)
                mapped_gets += got[True]['requests']
            for shunt in (True, False):
                rps[key, shunt].append(got[shunt]['rps'])
                cpu_us[key, shunt].append(
                    cpu[shunt] / got[shunt]['requests'] * 1e6)
        bench.log(f'  overhead pair {pair + 1}/{pairs}: ' + ', '.join(
            f'{key} {rps[key, True][-1]:.0f} vs {rps[key, False][-1]:.0f}'
            f'/s' for key, *_ in WORKLOADS))
    shares = {}
    for key, _, container, obj, query, _ in WORKLOADS:
        got = profile(bench, bench.url(container, obj, query))
        if got is not None:
            shares[key] = got
    bench.log(f'  overhead: {time.monotonic() - t0:.0f}s')

    rows = []
    for key, title, _, _, _, target in WORKLOADS:
        ratios = paired_ratios(rps[key, True], rps[key, False])
        cpu_with = median(cpu_us[key, True])
        cpu_without = median(cpu_us[key, False])
        cross = f'CPU/req {cpu_without / cpu_with:.3f}'
        if key in shares and shares[key][0] is not None:
            cross += (f'; py-spy: {shares[key][0]:.2%} in shunt '
                      f'(-> {1 - shares[key][0]:.3f})')
        rows.append(Row(
            key=key, title=title,
            measured=median(rps[key, True]),
            limit=median(rps[key, False]),
            unit='req/s', target=target, check='>=',
            ratio=median(ratios), spread=spread(ratios),
            noisy=spread(ratios) > 0.05,
            samples={'with_shunt': rps[key, True],
                     'without_shunt': rps[key, False],
                     'ratios': ratios,
                     'proxy_cpu_us_per_request_with': cpu_us[key, True],
                     'proxy_cpu_us_per_request_without':
                         cpu_us[key, False],
                     'py_spy_shunt_share_and_samples': shares.get(key)},
            cross=cross,
            note=f'median of {pairs} pairs of {duration}s runs ({mode}) '
                 f'over {blocks} restarts of both proxies, '
                 f'wrk -c{CONNECTIONS}; proxy CPU/request '
                 f'{cpu_with:.0f} vs {cpu_without:.0f} us '
                 f'({cpu_without / cpu_with:.3f})'))
    rows.append(Row(
        key='2r', title='mapped, object local: S3 requests',
        measured=len(remote_calls), limit=None, unit='requests',
        target=0, check='==', value=len(remote_calls),
        value_unit='requests',
        samples={'requests': [' '.join(c) for c in remote_calls[:20]]},
        note=f'seen at the counting proxy while the shunt served '
             f'{mapped_gets} GETs of local objects in the mapped '
             f'container'))
    return rows
