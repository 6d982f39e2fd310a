"""The ``cloud-shunt`` command.

Subcommands:

``cloud-shunt aio [--state-dir DIR] [--container-replicas N] [--no-sync]
[--remote {moto,s3api,swift}]``
    Start an all-in-one Swift cluster with an S3 endpoint on 127.0.0.1 (see
    :mod:`shunt.tools.aio`) and the sync daemon ``cloud-shunt-sync`` on
    every container node, print how to use them and keep them running
    until Ctrl-C or SIGTERM. ``--remote`` chooses the archive: moto (the
    default), Swift's s3api, or ``swift``: a second, independent Swift
    cluster (``protocol: "swift"`` profiles).
``cloud-shunt demo [--state-dir DIR] [--check] ...``
    The same, seeded with a container ``archive`` of ``AUTH_test`` mapped
    by an archive profile (``retain_local`` false, a short ``copy_after``,
    ``restore_object``): objects written into Swift, one daemon pass that
    moves the older ones to the bucket, and commands showing that the
    listing still has everything, that reads come from the bucket and that
    a whole GET restores an object. ``--check`` verifies that cycle, prints
    ``OK`` and exits (0 on success) instead of staying up. With ``--remote
    swift`` the archive is the second Swift cluster's container
    ``cloud-shunt-archive_AUTH_test_archive``.
``cloud-shunt check-config [PATH] [--no-probe] [--timeout S] ...``
    Validate a mapping file as the middleware does, then probe every
    shunted profile's bucket (a swift profile: its auth and remote
    container) and print a table; exit 0 when all is well, 1 otherwise
    (see :mod:`shunt.tools.checks`).
``cloud-shunt sync-status CONFIG [--json] [--dry-run]``
    On a container node: what the sync daemon did and has left to do per
    mapped container DB (see :mod:`shunt.daemon.status`); ``--dry-run``
    lists what a pass would act on now.
``cloud-shunt locate [--conf PATH] ACCOUNT CONTAINER OBJECT``
    Print the endpoint, bucket and key where an object of a mapped
    container is archived (and its SLO manifest sidecar's key; for a swift
    profile the remote container and name); exit 1 when the container is
    not mapped (see :mod:`shunt.tools.locating`).

Adding a subcommand::

    @command('name', help='...')
    @argument('arg')
    def name_command(args):
        ...
        return 0  # exit status
"""

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from urllib.parse import quote

_COMMANDS = {}


def command(name, help, description=None):
    """Register ``func(args) -> exit status`` as subcommand ``name``."""
    def register(func):
        _COMMANDS[name] = (func, help, description or help)
        return func
    return register


def argument(*args, **kwargs):
    """Add an ``add_argument(*args, **kwargs)`` to a subcommand (put it
    below :func:`command`; arguments are added top to bottom)."""
    def add(func):
        func.__dict__.setdefault('cli_arguments', []).insert(
            0, (args, kwargs))
        return func
    return add


def build_parser():
    parser = argparse.ArgumentParser(
        prog='cloud-shunt',
        description='Tools for the swift-cloud-shunt middleware.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    subparsers.required = True
    for name, (func, help_, description) in _COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_,
                                    description=description)
        for args, kwargs in getattr(func, 'cli_arguments', ()):
            sub.add_argument(*args, **kwargs)
        sub.set_defaults(func=func)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130


# -- aio / demo -----------------------------------------------------------

class _Terminated(Exception):
    pass


@contextlib.contextmanager
def _stop_on_sigterm():
    """Turn SIGTERM into an exception while the cluster is up."""
    def handler(signum, frame):
        raise _Terminated()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start_cluster(args):
    from shunt.tools.aio import Cluster
    print('Starting the all-in-one cluster...', flush=True)
    started = time.monotonic()
    cluster = Cluster(state_dir=args.state_dir,
                      reload_interval=args.reload_interval,
                      container_replicas=args.container_replicas,
                      s3_backend=args.remote)
    cluster.start()
    print(f'Cluster up in {time.monotonic() - started:.1f}s.\n', flush=True)
    return cluster


def swift_command():
    """The ``swift`` client of the Python running this (the project's
    virtualenv): the one on PATH may be another, or none."""
    here = os.path.join(os.path.dirname(sys.executable), 'swift')
    return shlex.quote(here) if os.access(here, os.X_OK) else 'swift'


def remote_swift(cluster):
    """The ``swift`` client command of the remote Swift cluster."""
    return (f'{swift_command()} -A {cluster.remote.auth_url} '
            f'-U {cluster.remote_identity} -K {cluster.remote_secret}')


def archive_name(cluster):
    """The demo's bucket, or its remote container on a remote Swift."""
    if cluster.remote is not None:
        return cluster.remote.container_for(DEMO_ACCOUNT, DEMO_CONTAINER)
    return cluster.bucket


def bucket_listing(cluster):
    """A shell command listing the bucket's keys with what is installed
    (boto3 of this Python; no AWS CLI needed); on a remote Swift, the
    demo's remote container with the ``swift`` client."""
    if cluster.remote is not None:
        return f'{remote_swift(cluster)} list {archive_name(cluster)}'
    code = ('import boto3; s3 = boto3.client("s3", endpoint_url=%r, '
            'aws_access_key_id=%r, aws_secret_access_key=%r, '
            'region_name=%r); '
            '[print(o["Key"]) for p in s3.get_paginator("list_objects_v2")'
            '.paginate(Bucket=%r) for o in p.get("Contents", [])]' % (
                cluster.s3_endpoint, cluster.s3_key, cluster.s3_secret,
                cluster.s3_region, cluster.bucket))
    return '%s -c %s' % (shlex.quote(sys.executable), shlex.quote(code))


def demo_swift(cluster):
    return (f'{swift_command()} -A {cluster.auth_url} -U test:tester '
            f'-K testing')


def _archive_endpoint(cluster):
    """What ``aio`` prints about the archive store."""
    if cluster.remote is None:
        return f"""S3 endpoint     {cluster.s3_endpoint}
  credentials   {cluster.s3_key} / {cluster.s3_secret}
  bucket        {cluster.bucket}"""
    from shunt.tools import aio_remote
    users = '\n                '.join(
        f'{a}:{u} / {k}' for a, u, k, _ in aio_remote.REMOTE_USERS)
    return f"""Remote Swift    {cluster.remote.url}   (the archive)
  auth (v1.0)   {cluster.remote.auth_url}
  users         {users}
  policies      {', '.join(aio_remote.REMOTE_POLICIES)}
  containers    {cluster.bucket}_<account>_<container> (one per mapped
                container; "protocol": "swift" profiles)"""


def _archive_listing(cluster):
    if cluster.remote is not None:
        return f'{remote_swift(cluster)} list'
    return bucket_listing(cluster)


def _print_endpoints(cluster):
    storage_url, token = cluster.token()
    swift = swift_command()
    print(f"""Swift proxy     {cluster.proxy_url}
  auth (v1.0)   {cluster.auth_url}
  users         test:tester / testing    (admin of AUTH_test)
                test:tester3 / testing3  (non-admin of AUTH_test)
                test2:tester2 / testing2 (admin of AUTH_test2)
  storage URL   {storage_url}
  token         {token}
  policies      gold (default), silver
{_archive_endpoint(cluster)}
Mapping file    {cluster.mapping_file}
  (re-read every {cluster.reload_interval:g}s; make profiles with
  "merge_namespaces": true and the endpoint/credentials above)
State dir       {cluster.state_dir}
Proxy log       {cluster.proxy_log_path}
Sync daemon     {_sync_summary(cluster)}

Try:
  export ST_AUTH={cluster.auth_url} ST_USER=test:tester ST_KEY=testing
  {swift} stat
  {swift} upload mycontainer README.rst
  curl -i -H 'X-Auth-Token: {token}' {storage_url}
  {_archive_listing(cluster)}
""", flush=True)
    return storage_url, token


def _sync_summary(cluster):
    nodes = cluster.container_nodes
    return (f'cloud-shunt-sync on {len(nodes)} container node(s), every '
            f'{cluster.sync_conf.get("interval")}s\n'
            f'  config        {cluster.conf_path(nodes[0])} '
            f'[cloud-shunt-sync]\n'
            f'  log           {cluster.sync_log_path(nodes[0])}')


def _serve(cluster):
    print('Up; press Ctrl-C to stop.', flush=True)
    reported = set()
    while True:
        time.sleep(1)
        for name, proc in list(cluster.procs.items()):
            if not proc.running() and name not in reported:
                reported.add(name)
                print(f'WARNING: {name} exited (status '
                      f'{proc.exit_status()}); see {proc.log_path}',
                      file=sys.stderr, flush=True)


def _run(args, seed=None, check=None):
    cluster = None
    try:
        with _stop_on_sigterm():
            cluster = _start_cluster(args)
            demo = seed(cluster) if seed else None
            if demo:
                demo['check'] = bool(check)
            storage_url, token = _print_endpoints(cluster)
            if demo:
                _print_demo(cluster, demo, storage_url, token)
            if check:
                return check(cluster, demo)
            if args.sync:
                cluster.start_sync()
            _serve(cluster)
    except (KeyboardInterrupt, _Terminated):
        print('\nStopping...', flush=True)
        return 0
    except Exception as err:
        print(f'cloud-shunt: {err}', file=sys.stderr, flush=True)
        return 1
    finally:
        if cluster is not None:
            # a second Ctrl-C must not leave servers behind
            with _ignoring_signals():
                cluster.stop()
            print('Stopped.', flush=True)


@contextlib.contextmanager
def _ignoring_signals():
    previous = {sig: signal.signal(sig, signal.SIG_IGN)
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_CLUSTER_ARGUMENTS = (
    (('--state-dir',), dict(
        metavar='DIR', default=None,
        help='directory for configs, rings, data and logs (created if '
             'missing, kept afterwards); default: a temporary directory '
             'removed on exit')),
    (('--reload-interval',), dict(
        metavar='SECONDS', type=float, default=1.0,
        help='how often the proxy re-reads the mapping file (default: '
             '%(default)s)')),
    (('--container-replicas',), dict(
        metavar='N', type=int, choices=(1, 2, 3), default=1,
        help='container servers (one per container ring replica; the '
             'daemon runs on each; default: %(default)s)')),
    (('--no-sync',), dict(
        dest='sync', action='store_false',
        help='do not keep the sync daemon running')),
    (('--remote',), dict(
        choices=('moto', 's3api', 'swift'), default='moto',
        help='the archive: moto (S3, in memory), s3api (Swift\'s S3 on '
             'this cluster) or swift (a second Swift cluster); default: '
             '%(default)s')),
)


def _cluster_arguments(func):
    for args, kwargs in reversed(_CLUSTER_ARGUMENTS):
        func = argument(*args, **kwargs)(func)
    return func


@command('aio', help='run an all-in-one Swift cluster and S3 endpoint',
         description='Start Swift (account, container, object, proxy with '
                     'cloud_shunt), memcached and an S3 endpoint on '
                     '127.0.0.1, print how to use them, and stop everything '
                     'on Ctrl-C or SIGTERM.')
@_cluster_arguments
def aio_command(args):
    return _run(args)


# what `demo` seeds: container DEMO_CONTAINER of DEMO_ACCOUNT, mapped to
# the default bucket (hashed layout) by an *archive* profile: the daemon
# moves objects older than DEMO_COPY_AFTER seconds to the bucket, and
# whole GETs through the proxy restore them
DEMO_ACCOUNT = 'AUTH_test'
DEMO_CONTAINER = 'archive'
DEMO_COPY_AFTER = 10
DEMO_UNICODE_NAME = 'caf\u00e9-men\u00fc.txt'
# written first, older than copy_after at the daemon's first pass:
# name -> (body, X-Object-Meta-* values, content type)
DEMO_OLD = {
    'report.txt': (b'Archived report: written into Swift, moved to the '
                   b'bucket by cloud-shunt-sync.\n',
                   {'Author': 'demo', 'Color': 'blue'}, 'text/plain'),
    DEMO_UNICODE_NAME: ('Unicode name, archived: caf\u00e9 cr\u00e8me '
                        '\u2615\n'.encode('utf-8'), {},
                        'text/plain; charset=utf-8'),
    '2019/january.csv': (b'day,visits\n1,17\n2,23\n', {}, 'text/csv'),
}
# written just before the pass: younger than copy_after, still local
DEMO_NEW = {
    'readme.txt': b'This object is stored in Swift (too young to '
                  b'archive).\n',
    'local/notes.txt': b'Local objects are served by Swift as usual.\n',
}
# the object the demo restores with a whole GET
DEMO_RESTORED = 'report.txt'


def demo_profile(cluster):
    return cluster.profile(DEMO_ACCOUNT, DEMO_CONTAINER, retain_local=False,
                           copy_after=DEMO_COPY_AFTER, restore_object=True)


def seed_demo(cluster):
    """Map ``AUTH_test/archive`` with an archive profile, write objects
    into Swift, wait until the first ones are older than ``copy_after``,
    write a few more, and run one daemon pass on every container node.
    Returns ``{'keys': {name: bucket key}, 'pass': [(node, status)]}``."""
    from shunt.core import layout
    cluster.write_mappings([demo_profile(cluster)])
    # the proxy would see the new file only after its reload interval
    cluster.restart_proxy()
    conn = cluster.swift_conn()
    conn.put_container(DEMO_CONTAINER)
    for name, (body, metadata, content_type) in DEMO_OLD.items():
        conn.put_object(DEMO_CONTAINER, name, body,
                        content_type=content_type,
                        headers={f'X-Object-Meta-{k}': v
                                 for k, v in metadata.items()})
    print(f'Demo: wrote {len(DEMO_OLD)} objects into Swift; waiting '
          f'{DEMO_COPY_AFTER}s (the profile\'s copy_after)...', flush=True)
    time.sleep(DEMO_COPY_AFTER + 1)
    for name, body in DEMO_NEW.items():
        conn.put_object(DEMO_CONTAINER, name, body,
                        content_type='text/plain')
    print(f'Demo: wrote {len(DEMO_NEW)} more; running one pass of '
          f'cloud-shunt-sync on each container node...', flush=True)
    passes = []
    for node, (status, output) in zip(cluster.container_nodes,
                                      cluster.sync_once(), strict=True):
        passes.append((node, status))
        print(f'  {node}: exit status {status} '
              f'(log {cluster.sync_log_path(node)})', flush=True)
        if status != 0:
            print(output[-2000:], file=sys.stderr, flush=True)
    conn.close()
    if cluster.remote is not None:
        # a remote Swift keeps the names
        keys = {name: name for name in DEMO_OLD}
    else:
        keys = {name: layout.object_key(DEMO_ACCOUNT, DEMO_CONTAINER, name)
                for name in DEMO_OLD}
    return {'keys': keys, 'pass': passes}


def _where(conn, name, archived='bucket'):
    """``archived`` or 'local' (or the error), by the object's HEAD."""
    from swiftclient.exceptions import ClientException
    try:
        headers = conn.head_object(DEMO_CONTAINER, name)
    except ClientException as err:
        return f'error {err.http_status}'
    return archived if headers.get('content-location') else 'local'


def _print_demo(cluster, demo, storage_url, token):
    swift = demo_swift(cluster)
    conn = cluster.swift_conn()
    where = ('remote Swift container' if cluster.remote is not None
             else 'bucket')
    lines = [f'Demo: container {DEMO_CONTAINER!r} of {DEMO_ACCOUNT} is '
             f'mapped to {where} {archive_name(cluster)!r} with '
             f'"retain_local": false, "copy_after": {DEMO_COPY_AFTER}, '
             f'"restore_object": true.',
             '  objects (where a GET reads them from now):']
    for name in list(DEMO_OLD) + list(DEMO_NEW):
        lines.append(f'    {name:24} '
                     f'{_where(conn, name, where.split()[-1])}')
    conn.close()
    lines += [f'  {where} keys: ' + ', '.join(demo['keys'].values()),
              f'  {bucket_listing(cluster)}',
              '',
              'See them through Swift:',
              f'  {swift} list {DEMO_CONTAINER}']
    for name in DEMO_OLD:
        lines.append(f"  {swift} download {DEMO_CONTAINER} '{name}' -o -")
    lines.append(f'  {swift} stat {DEMO_CONTAINER} report.txt')
    url = f'{storage_url}/{DEMO_CONTAINER}'
    lines += [f"  curl -i -H 'X-Auth-Token: {token}' -H 'Range: bytes=0-12' "
              f"{url}/{quote(DEMO_UNICODE_NAME)}",
              f"  curl -I -H 'X-Auth-Token: {token}' "
              f"-H 'X-Cloud-Sync-Shunt-Bypass: true' {url}/report.txt"
              f"   # local copy: 404 (archived)",
              f"  curl -i -H 'X-Auth-Token: {token}' {url}/report.txt"
              f"   # a whole GET restores it: the bypass HEAD gives 200",
              f"  {sys.executable} -m shunt.tools.cli sync-status "
              f"{cluster.conf_path('container')}",
              '']
    if not demo.get('check'):
        lines += [f'The daemon keeps running on every container node '
                  f'(interval {cluster.sync_conf.get("interval")}s): '
                  f'objects you upload to {DEMO_CONTAINER!r}',
                  f'move to the bucket once older than {DEMO_COPY_AFTER}s '
                  f'(restored ones too). Its log: '
                  f'{cluster.sync_log_path("container")}',
                  '']
    print('\n'.join(lines), flush=True)


def check_demo(cluster, demo):
    """Verify the cycle: the pass succeeded, the old objects are archived
    (no local copy; served from the bucket with their bytes, type and
    metadata), the new ones local, the listing complete, and a whole GET
    restores one. 0 when all is well."""
    conn = cluster.swift_conn()
    failures = [f'daemon pass on {node}: exit status {status}'
                for node, status in demo['pass'] if status != 0]
    _, listing = conn.get_container(DEMO_CONTAINER)
    missing = (set(DEMO_OLD) | set(DEMO_NEW)) - {o['name'] for o in listing}
    if missing:
        failures.append(f'listing of {DEMO_CONTAINER}: missing {missing}')
    for name, (body, metadata, content_type) in DEMO_OLD.items():
        failures += _check_archived(cluster, conn, name, body, metadata,
                                    content_type)
    for name, body in DEMO_NEW.items():
        headers, got = conn.get_object(DEMO_CONTAINER, name)
        if got != body or headers.get('content-location'):
            failures.append(f'GET {DEMO_CONTAINER}/{name}: not the local '
                            f'object (archived although younger than '
                            f'copy_after: was the pass that slow?)')
    failures += _check_restore(cluster, conn, DEMO_RESTORED,
                               DEMO_OLD[DEMO_RESTORED][0])
    failures += check_printed_commands(cluster, demo['keys'])
    conn.close()
    if failures:
        print('FAILED:\n  ' + '\n  '.join(failures), file=sys.stderr,
              flush=True)
        print(f'(proxy log: {cluster.proxy_log_path}; daemon logs: '
              f'{cluster.sync_log_path("container")})', file=sys.stderr)
        return 1
    print('OK', flush=True)
    return 0


def _bypass_status(conn, name):
    from swiftclient.exceptions import ClientException
    try:
        conn.head_object(DEMO_CONTAINER, name,
                         headers={'X-Cloud-Sync-Shunt-Bypass': 'true'})
        return 200
    except ClientException as err:
        return err.http_status


def _check_archived(cluster, conn, name, body, metadata, content_type):
    from swiftclient.exceptions import ClientException
    what = f'{DEMO_CONTAINER}/{name}'
    if _bypass_status(conn, name) != 404:
        return [f'{what}: still local after the pass (not archived)']
    try:
        # a range GET reads the bytes without restoring the object
        headers, got = conn.get_object(DEMO_CONTAINER, name,
                                       headers={'Range': 'bytes=0-'})
    except ClientException as err:
        return [f'GET {what}: {err}']
    failures = []
    location = headers.get('content-location', '')
    print(f'GET {what}: {len(got)} bytes from {location or "?"}',
          flush=True)
    if got != body:
        failures.append(f'GET {what}: body {got[:60]!r} != {body[:60]!r}')
    if cluster.remote is not None:
        archived_at = cluster.remote_endpoint
    else:
        archived_at = f'{cluster.s3_endpoint}/{cluster.bucket}/'
    if not location.startswith(archived_at):
        failures.append(f'GET {what}: not read from the bucket '
                        f'(Content-Location {location!r})')
    if headers.get('content-type') != content_type:
        failures.append(f'GET {what}: Content-Type '
                        f'{headers.get("content-type")!r}')
    got_meta = {k[len('x-object-meta-'):]: v for k, v in headers.items()
                if k.startswith('x-object-meta-')}
    if got_meta != {k.lower(): v for k, v in metadata.items()}:
        failures.append(f'GET {what}: metadata {got_meta!r}')
    return failures


def _check_restore(cluster, conn, name, body, timeout=15.0):
    what = f'{DEMO_CONTAINER}/{name}'
    _, got = conn.get_object(DEMO_CONTAINER, name)
    if got != body:
        return [f'restoring GET {what}: wrong body']
    deadline = time.monotonic() + timeout
    while _bypass_status(conn, name) != 200:
        if time.monotonic() > deadline:
            return [f'{what}: not restored into Swift {timeout:g}s after '
                    f'a whole GET']
        time.sleep(0.2)
    headers, got = conn.get_object(
        DEMO_CONTAINER, name, headers={'X-Cloud-Sync-Shunt-Bypass': 'true'})
    if got != body:
        return [f'{what}: the restored local copy differs']
    print(f'GET {what}: restored into Swift ({len(got)} bytes local)',
          flush=True)
    return []


def check_printed_commands(cluster, keys):
    """Run the listing commands the demo prints, as a person pasting them
    into a shell would; the failures found."""
    failures = []
    expected = {
        f'{demo_swift(cluster)} list {DEMO_CONTAINER}':
            set(DEMO_OLD) | set(DEMO_NEW),
        bucket_listing(cluster): set(keys.values()),
    }
    for line, names in expected.items():
        out = subprocess.run(['/bin/sh', '-c', line], capture_output=True,
                             text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
        listed = set(out.stdout.splitlines())
        if out.returncode != 0 or not names <= listed:
            failures.append(f'printed command failed ({out.returncode}): '
                            f'{line}\n    {out.stderr.strip()[-300:]}')
        else:
            print(f'printed command OK: {line[:60]}...', flush=True)
    return failures


@command('demo', help='run the all-in-one cluster seeded with a demo',
         description='Like "aio", plus a mapped container "archive" of '
                     'AUTH_test whose older objects the sync daemon moves '
                     'to the bucket (archive mode, short copy_after), and '
                     'commands that show them still listed and readable '
                     'from the bucket, and restored by a whole GET.')
@_cluster_arguments
@argument('--check', action='store_true',
          help='verify the whole cycle (archived, listed, read from the '
               'bucket, restored), print OK and exit 0 if all is well '
               '(non-interactive)')
def demo_command(args):
    return _run(args, seed=seed_demo,
                check=check_demo if args.check else None)


# -- operator tools -------------------------------------------------------

def _default_conf_file():
    from shunt.proxy.middleware import DEFAULT_CONF_FILE
    return DEFAULT_CONF_FILE


@command('check-config', help='validate a mapping file and probe buckets',
         description='Validate the mapping file exactly as the middleware '
                     'does, list the profiles it does not shunt, then probe '
                     "every shunted profile's bucket (reachability, "
                     'credentials, the key prefix holds objects) with one '
                     'ListObjects of one key (a swift profile: its auth, '
                     'then a listing of one name of its remote container, '
                     'which may not exist yet; a swift "/*" profile: auth '
                     'and account only), and print a table. Exit '
                     'status 0 when the file is valid and every probe '
                     'succeeds, 1 otherwise. Secrets are never printed.')
@argument('path', metavar='PATH', nargs='?', default=None,
          help='the mapping file (default: the filter\'s default, '
               '/etc/swift/cloud-shunt.json)')
@argument('--no-probe', action='store_true',
          help='only validate the file; do not contact any bucket')
@argument('--timeout', metavar='SECONDS', type=float,
          default=5.0,
          help='connect and read timeout of each probe (default: '
               '%(default)s; probes are not retried)')
@argument('--s3-region', metavar='REGION', default='us-east-1',
          help="signing region of profiles without aws_region, as the "
               "filter's s3_region (default: %(default)s)")
@argument('--allow-empty', action='store_true',
          help='a key prefix with nothing archived under it is OK (a '
               'container mapped before anything was archived)')
def check_config_command(args):
    from shunt.tools import checks as tools
    return tools.check_config(
        args.path or _default_conf_file(), sys.stdout, sys.stderr,
        do_probe=not args.no_probe, timeout=args.timeout,
        region=args.s3_region, allow_empty=args.allow_empty)


@command('locate', help='where an object is archived (bucket and key)',
         description='Print the endpoint, bucket and key where an object '
                     'of a mapped container would be archived, and the key '
                     'of its SLO manifest sidecar (a swift profile: the '
                     'remote container, the name there, its segments '
                     'container and URL), using the mapping '
                     'file\'s profile for the container (the exact '
                     'container first, then ACCOUNT/*). Exit status 1 '
                     'when the container is not mapped.')
@argument('account', metavar='ACCOUNT')
@argument('container', metavar='CONTAINER')
@argument('obj', metavar='OBJECT')
@argument('--conf', metavar='PATH', default=None,
          help='the mapping file (default: /etc/swift/cloud-shunt.json)')
@argument('--no-conf', action='store_true',
          help='do not read a mapping file: print the keys of the hashed '
               'layout (or of --custom-prefix)')
@argument('--custom-prefix', metavar='PREFIX', default=None,
          help='the keys for this custom_prefix layout, without reading '
               'a mapping file')
@argument('--quoted', action='store_true',
          help='the names are URL-quoted (as in a request path or a '
               'proxy log line)')
@argument('--json', action='store_true',
          help='print one JSON object')
def locate_command(args):
    from shunt.tools import locating
    return locating.locate(
        sys.stdout, sys.stderr, args.account, args.container, args.obj,
        conf=args.conf or _default_conf_file(), use_conf=not args.no_conf,
        custom_prefix=args.custom_prefix, quoted=args.quoted,
        as_json=args.json)


@command('sync-status', help='what the sync daemon did and has left to do',
         description='On a container node: per mapped container DB of the '
                     'node, the rows done, pending, unverified, failing and '
                     'deferred, the objects and bytes uploaded and '
                     'archived, the last pass and the lag, from the sync '
                     'daemon\'s progress files (see shunt.daemon.status). '
                     'With --dry-run: what a pass would act on now. No '
                     'remote call, no secret printed.')
@argument('config', metavar='CONFIG',
          help='the container server config with the [cloud-shunt-sync] '
               'section (as given to cloud-shunt-sync)')
@argument('--json', action='store_true', help='print JSON')
@argument('--dry-run', action='store_true',
          help='list the rows a pass would act on now (no remote call, '
               'nothing written)')
def sync_status_command(args):
    from shunt.daemon import status
    return status.main(args.config, as_json=args.json,
                       dry_run=args.dry_run)


if __name__ == '__main__':
    sys.exit(main())
