"""Restore-on-read and archived SLO throughput on the all-in-one cluster,
side by side in one run.

One cluster (one proxy worker), two mapped containers over the same bucket:
``bench-restore`` restores what is read (``restore_object``), ``bench-plain``
does not. Each figure is timed in turn with the same client, over several
rounds, and reported as the median:

* archived GET of a plain object, without restore and with restore (every
  restoring round reads a fresh archived copy: a restored one is local);
* the same for an archived SLO (an S3 multipart upload, one part per
  segment, with its manifest sidecar), restored as an SLO; and the
  archived SLO against an archived plain object of the same bytes;
* the limits: the same key read directly from S3 with boto3, the same
  bytes PUT into Swift through the proxy (a restore cannot write faster
  than Swift takes a PUT), and the restored object read back locally;
* the proxy worker's peak memory (VmHWM) after one archived GET without
  and one with restore, each on a freshly started proxy warmed up with a
  small restoring GET.

A restoring GET is one proxy worker (one CPU-bound process) doing the work
of an archived GET *and* of a local PUT of the same bytes, so its limit is
the two costs added: ``1 / (1 / GET + 1 / PUT)`` in MB/s, each measured in
the same run.

Prints a table with ratios; ``--json PATH`` writes the rows for
``tests/bench/run.py``. Run::

    python tests/bench/bench_restore.py [--quick] [--rounds N] [--size MiB]

(not part of the test run; about a minute).
"""

import argparse
import hashlib
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from shunt.core import layout  # noqa: E402
from shunt.tools.aio import Cluster  # noqa: E402
from tests.bench.common import (  # noqa: E402
    Client,
    MiB,
    Row,
    mbps,
    median,
    memory_kib,
    spread,
    worker_of,
)

RESTORE = 'bench-restore'
PLAIN = 'bench-plain'
LOCAL = 'bench-local'
SEGMENT = 16 * MiB
# a restoring GET reads from S3, sends to the client and writes into Swift
# in one proxy worker: against the cost of an archived GET plus a local PUT
RESTORE_TARGET = 0.8
# an archived SLO costs one more (small) GET than a plain archived object
SLO_TARGET = 0.9
# what a restore may add to the worker's peak memory
MEMORY_TARGET_MIB = 16


def log(message):
    print(message, file=sys.stderr, flush=True)


class RestoreBench:
    def __init__(self, size, rounds, keep_state_dir=False):
        self.size = size
        self.rounds = rounds
        self.aio = Cluster(reload_interval=15, proxy_workers=1,
                           keep_state_dir=keep_state_dir)
        self.body = os.urandom(size)
        self.slo_parts = [self.body[i:i + SEGMENT]
                          for i in range(0, size, SEGMENT)]

    def start(self):
        aio = self.aio
        aio.start()
        url, self.token = aio.token()
        self.account = urllib.parse.urlsplit(url).path.split('/')[2]
        conn = aio.swift_conn()
        for container in (RESTORE, PLAIN, LOCAL):
            conn.put_container(container)
        conn.close()
        aio.write_mappings([
            aio.profile(self.account, RESTORE, restore_object=True),
            aio.profile(self.account, PLAIN)])
        aio.restart_proxy()  # load the mappings now
        self.client = Client(aio.ports['proxy'], self.token)
        self.pid = worker_of(aio.procs['proxy'].pid, 1)
        self.s3 = aio.s3_client()

    def stop(self):
        self.aio.stop()

    # -- data -----------------------------------------------------------

    def archive_plain(self, container, name):
        self.aio.archive_object(self.account, container, name, self.body)

    def archive_slo(self, container, name):
        s3, bucket = self.s3, self.aio.bucket
        key = layout.object_key(self.account, container, name)
        upload = s3.create_multipart_upload(
            Bucket=bucket, Key=key,
            Metadata={'x-static-large-object': 'True'})
        parts, manifest = [], []
        for number, data in enumerate(self.slo_parts, 1):
            resp = s3.upload_part(Bucket=bucket, Key=key, PartNumber=number,
                                  UploadId=upload['UploadId'], Body=data)
            parts.append({'PartNumber': number, 'ETag': resp['ETag']})
            manifest.append({
                'name': f'/{container}_segments/{name}/{number:08d}',
                'hash': hashlib.md5(data).hexdigest(), 'bytes': len(data),
                'content_type': 'application/octet-stream',
                'last_modified': '2026-01-01T00:00:00.000000'})
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload['UploadId'],
            MultipartUpload={'Parts': parts})
        s3.put_object(Bucket=bucket,
                      Key=layout.manifest_key(self.account, container, name),
                      Body=json.dumps(manifest).encode())

    def setup(self):
        t0 = time.monotonic()
        self.archive_plain(PLAIN, 'plain')
        self.archive_slo(PLAIN, 'slo')
        for r in range(self.rounds + 1):  # one more for the memory figure
            self.archive_plain(RESTORE, f'plain-{r}')
            self.archive_slo(RESTORE, f'slo-{r}')
        for i in range(4):
            self.aio.archive_object(self.account, RESTORE, f'warm-{i}',
                                    b'w' * 65536)
        log(f'archived {2 * (self.rounds + 2)} objects of '
            f'{self.size // MiB} MiB in {time.monotonic() - t0:.1f}s')

    # -- measurements ---------------------------------------------------

    def path(self, container, name):
        return f'/v1/{self.account}/{container}/{name}'

    def get(self, container, name, headers=None):
        status, got, _, total = self.client.get(self.path(container, name),
                                                headers)
        if status != 200 or got != self.size:
            raise RuntimeError(f'GET {container}/{name}: {status}, '
                               f'{got} bytes')
        return mbps(got, total)

    def put_local(self, name):
        """MB/s of a PUT of the same bytes into an unmapped container."""
        import http.client
        conn = http.client.HTTPConnection('127.0.0.1',
                                          self.aio.ports['proxy'],
                                          timeout=120)
        start = time.perf_counter()
        conn.request('PUT', self.path(LOCAL, name), body=self.body,
                     headers={'X-Auth-Token': self.token})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.status != 201:
            raise RuntimeError(f'local PUT: {resp.status}')
        return mbps(self.size, time.perf_counter() - start)

    def direct(self, container, name):
        key = layout.object_key(self.account, container, name)
        start = time.perf_counter()
        body = self.s3.get_object(Bucket=self.aio.bucket, Key=key)['Body']
        got = 0
        for chunk in body.iter_chunks(MiB):
            got += len(chunk)
        return mbps(got, time.perf_counter() - start)

    def is_local(self, container, name):
        status, _, _, _ = self.client.get(
            self.path(container, name),
            {'X-Cloud-Sync-Shunt-Bypass': 'true', 'Range': 'bytes=0-0'})
        return status == 206

    def peak_memory(self, container, name, warm):
        """VmHWM (MiB) of a fresh proxy worker after a small restoring
        GET (``warm``) and then a GET of ``container/name``."""
        self.client.close()
        self.aio.restart_proxy()
        self.pid = worker_of(self.aio.procs['proxy'].pid, 1)
        status, _, _, _ = self.client.get(self.path(RESTORE, warm))
        if status != 200:
            raise RuntimeError(f'warm-up GET: {status}')
        self.get(container, name)
        return memory_kib(self.pid)['VmHWM'] / 1024

    def run(self):
        samples = {k: [] for k in (
            'plain', 'plain_restore', 'plain_direct', 'plain_local',
            'slo', 'slo_restore', 'slo_direct', 'slo_local', 'put')}
        for r in range(self.rounds):
            for kind in ('plain', 'slo'):
                samples[kind].append(self.get(PLAIN, kind))
                samples[f'{kind}_restore'].append(
                    self.get(RESTORE, f'{kind}-{r}'))
                if not self.is_local(RESTORE, f'{kind}-{r}'):
                    raise RuntimeError(f'{kind}-{r} was not restored')
                samples[f'{kind}_direct'].append(self.direct(PLAIN, kind))
                samples[f'{kind}_local'].append(
                    self.get(RESTORE, f'{kind}-{r}'))
            samples['put'].append(self.put_local(f'put-{r}'))
            log(f'round {r + 1}/{self.rounds}: ' + ', '.join(
                f'{k} {v[-1]:.0f}' for k, v in samples.items()) + ' MB/s')
        last = self.rounds
        memory = {}
        for key, container, name in (
                ('plain', PLAIN, 'plain'),
                ('restore', RESTORE, f'plain-{last}'),
                ('slo', PLAIN, 'slo'),
                ('slo_restore', RESTORE, f'slo-{last}')):
            memory[key] = self.peak_memory(container, name,
                                           f'warm-{len(memory)}')
        return samples, memory

    def rows(self, samples, memory):
        mib = self.size // MiB
        med = {k: median(v) for k, v in samples.items()}
        noisy = {k: spread(v) > 0.15 for k, v in samples.items()}
        rows = []
        for kind, label in (('plain', 'object'), ('slo', 'SLO')):
            limit = 1 / (1 / med[kind] + 1 / med['put'])
            rows.append(Row(
                key=f'7r-{kind}', unit='MB/s',
                title=f'archived {label} GET with restore, {mib} MiB',
                measured=med[f'{kind}_restore'], limit=limit,
                target=RESTORE_TARGET,
                noisy=noisy[kind] or noisy[f'{kind}_restore'] or
                noisy['put'],
                samples={'restore': samples[f'{kind}_restore'],
                         'no_restore': samples[kind],
                         'local_put': samples['put']},
                note=f'vs an archived GET without restore '
                     f'({med[kind]:.0f} MB/s, '
                     f'{med[f"{kind}_restore"] / med[kind]:.2f} of it) '
                     f'plus a local PUT of the same bytes '
                     f'({med["put"]:.0f} MB/s) in the one worker; direct S3 '
                     f'{med[f"{kind}_direct"]:.0f} MB/s, restored copy '
                     f'read locally {med[f"{kind}_local"]:.0f} MB/s'))
        rows.append(Row(
            key='7r-slo-read', unit='MB/s',
            title=f'archived SLO GET (no restore), {mib} MiB',
            measured=med['slo'], limit=med['plain'], target=SLO_TARGET,
            noisy=noisy['slo'] or noisy['plain'],
            samples={'slo': samples['slo'], 'plain': samples['plain']},
            note=f'vs an archived plain object of the same bytes (the '
                 f'sidecar is the only difference); boto3 reads the '
                 f'multipart object directly at '
                 f'{med["slo_direct"]:.0f} MB/s'))
        for key, label in (('plain', 'object'), ('slo', 'SLO')):
            base = memory[key]
            grown = memory['restore' if key == 'plain' else 'slo_restore']
            rows.append(Row(
                key=f'7r-mem{"-slo" if key == "slo" else ""}', unit='MiB',
                title=f'proxy peak memory, restoring {label} GET',
                measured=grown, limit=base, check='<=',
                value=grown - base, value_unit='MiB more',
                target=MEMORY_TARGET_MIB,
                note=f'VmHWM of a fresh worker after one {mib} MiB GET: '
                     f'{grown:.1f} MiB with restore, {base:.1f} MiB '
                     f'without'))
        return rows


def print_table(rows):
    print(f'{"figure":<48} {"measured":>9} {"limit":>9} {"ratio":>6} '
          f'{"value":>7}  target')
    for row in rows:
        value = row.value if row.value is not None else row.ratio
        print(f'{row.title:<48} {row.measured:>9.1f} {row.limit:>9.1f} '
              f'{row.ratio or 0:>6.2f} {value:>7.2f}  {row.check} '
              f'{row.target:g} {row.value_unit}'
              f'{"  (noisy)" if row.noisy else ""}'
              f'{"" if row.met else "  NOT MET"}')
        print(f'    {row.note}')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='32 MiB objects, 2 rounds')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--size', type=int, default=64,
                        help='object size in MiB (default 64)')
    parser.add_argument('--json', help='write the rows to this file')
    parser.add_argument('--keep-state', action='store_true')
    args = parser.parse_args(argv)
    size, rounds = args.size * MiB, args.rounds
    if args.quick:
        size, rounds = 32 * MiB, 2
    bench = RestoreBench(size, rounds, keep_state_dir=args.keep_state)
    try:
        bench.start()
        bench.setup()
        samples, memory = bench.run()
    finally:
        bench.stop()
    rows = bench.rows(samples, memory)
    print_table(rows)
    if args.json:
        with open(args.json, 'w') as fp:
            json.dump({'rows': [r.as_dict() for r in rows]}, fp, indent=1)
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
