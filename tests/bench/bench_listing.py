"""Spliced listing speed on the all-in-one cluster, side by side.

Builds one mapped container holding 10,000 local and 10,000 archived
objects (interleaved names, plus a few present in both stores) and times,
in one run and with the same client:

* ``local``: a listing page of the local objects alone (the same
  container through the same proxy, with the bypass header, so the shunt
  only looks at the header);
* ``s3``: a direct listing of the same number of archived keys with boto3
  (ListObjects pages of 1,000 keys, one after the other, as any client
  must);
* ``spliced``: the same page through the shunt (local and archived rows
  merged);

for pages of 10,000 and 1,000 rows, as medians of several runs taken in
turn, and prints ``spliced / max(local, s3)`` (target: at most 1.2; the
local listing and the first S3 page are fetched at the same time, so a
page should cost about the slower of the two, not their sum). Two more
lines show what the documented costs look like: a reverse page (S3 is
read upwards from the start) and a reverse page bounded by ``end_marker``.

Run: ``python tests/bench/bench_listing.py [--runs N]`` (not part of the
test run; about three minutes, most of it building the container).
"""

import argparse
import concurrent.futures
import http.client
import os
import statistics
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from shunt.core.layout import key_prefix  # noqa: E402
from shunt.tools.aio import Cluster  # noqa: E402

OBJECTS = 10000
CONTAINER = 'bench-listing'
BYPASS = {'X-Cloud-Sync-Shunt-Bypass': 'true'}
TARGET = 1.2
_local = threading.local()


def connection(aio):
    """One keep-alive connection to the proxy per thread."""
    conn = getattr(_local, 'conn', None)
    if conn is None:
        url = urllib.parse.urlsplit(aio.proxy_url)
        conn = _local.conn = http.client.HTTPConnection(
            url.hostname, url.port, timeout=120)
    return conn


def call(aio, method, path, token, body=None, headers=None):
    hdrs = {'X-Auth-Token': token}
    hdrs.update(headers or {})
    for attempt in (1, 2):
        conn = connection(aio)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data
        except (http.client.HTTPException, OSError):
            conn.close()
            _local.conn = None
            if attempt == 2:
                raise


def build(aio, token, base):
    """The container: even numbers local, odd numbers archived, every
    1000th name in both stores."""
    local = ['obj-%06d' % i for i in range(0, 2 * OBJECTS, 2)]
    archived = ['obj-%06d' % i for i in range(1, 2 * OBJECTS, 2)]
    path = '%s/%s' % (base, CONTAINER)
    assert call(aio, 'PUT', path, token)[0] in (201, 202)
    s3 = aio.s3_client()
    account = base.split('/')[2]

    def put_local(name):
        status, _ = call(aio, 'PUT', '%s/%s' % (path, name), token,
                         body=name.encode(),
                         headers={'Content-Type': 'text/plain'})
        assert status == 201, status

    def put_archived(name):
        s3.put_object(Bucket=aio.bucket, Key=key_prefix(account, CONTAINER)
                      + name, Body=name.encode())

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(put_local, local))
        list(pool.map(put_archived, archived + local[::500]))
    return account, path, sorted(set(local) | set(archived))


def timed(func):
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def listing(aio, path, token, query, headers=None):
    status, body = call(aio, 'GET', path + '?' + urllib.parse.urlencode(
        dict(query, format='json')), token, headers=headers)
    assert status == 200, (status, body[:200])
    return body


def s3_listing(aio, prefix, rows):
    s3 = aio.s3_client()
    marker, got = '', 0
    while got < rows:
        kwargs = {'Bucket': aio.bucket, 'Prefix': prefix,
                  'MaxKeys': min(1000, rows - got)}
        if marker:
            kwargs['Marker'] = marker
        page = s3.list_objects(**kwargs)
        contents = page.get('Contents', [])
        got += len(contents)
        if not page.get('IsTruncated') or not contents:
            break
        marker = contents[-1]['Key']
    return got


def measure(aio, token, path, prefix, rows, runs):
    samples = {'local': [], 's3': [], 'spliced': []}
    query = {'limit': str(rows)}
    jobs = {
        'local': lambda: listing(aio, path, token, query, BYPASS),
        's3': lambda: s3_listing(aio, prefix, rows),
        'spliced': lambda: listing(aio, path, token, query),
    }
    for job in jobs.values():  # warm up caches and connections
        job()
    for run in range(runs):
        order = list(jobs) if run % 2 == 0 else list(jobs)[::-1]
        for name in order:
            seconds, _ = timed(jobs[name])
            samples[name].append(seconds)
    return {name: statistics.median(values)
            for name, values in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=9)
    args = parser.parse_args()
    print('starting the all-in-one cluster ...', flush=True)
    with Cluster(reload_interval=0) as aio:
        url, token = aio.token('test:tester', 'testing')
        base = urllib.parse.urlsplit(url).path
        started = time.monotonic()
        account, path, names = build(aio, token, base)
        aio.write_mappings([aio.profile(account, CONTAINER)])
        print('built %d local + %d archived objects in %.0f s' % (
            OBJECTS, OBJECTS, time.monotonic() - started), flush=True)
        prefix = key_prefix(account, CONTAINER)
        full = listing(aio, path, token, {})
        assert full.count(b'"name"') == OBJECTS, 'not a spliced listing'

        print()
        print('%-34s %9s %9s %11s %7s %7s' % (
            'page (medians of %d runs)' % args.runs, 'local ms', 's3 ms',
            'spliced ms', 'ratio', 'target'))
        worst = 0
        for rows in (OBJECTS, 1000):
            t = measure(aio, token, path, prefix, rows, args.runs)
            ratio = t['spliced'] / max(t['local'], t['s3'])
            worst = max(worst, ratio)
            print('%-34s %9.1f %9.1f %11.1f %7.2f %7s' % (
                '%d rows' % rows, 1000 * t['local'], 1000 * t['s3'],
                1000 * t['spliced'], ratio,
                '<= %.1f %s' % (TARGET, 'ok' if ratio <= TARGET else
                                'MISSED')))

        print()
        print('documented costs (spliced only):')
        for title, query in (
                ('reverse, 1000 rows from the top',
                 {'limit': '1000', 'reverse': 'true'}),
                ('reverse, 1000 rows, end_marker bound',
                 {'limit': '1000', 'reverse': 'true',
                  'end_marker': names[-2100]}),
                ('delimiter=/ (one subdir-free page)',
                 {'limit': '1000', 'delimiter': '/'}),
                ('path= (1000 rows)', {'limit': '1000', 'path': ''})):
            listing(aio, path, token, query)
            seconds = statistics.median(
                timed(lambda q=query: listing(aio, path, token, q))[0]
                for _ in range(max(3, args.runs // 2)))
            print('  %-40s %9.1f ms' % (title, 1000 * seconds))
        print()
        print('worst ratio %.2f (target <= %.1f): %s' % (
            worst, TARGET, 'met' if worst <= TARGET else 'NOT met'))


if __name__ == '__main__':
    main()
