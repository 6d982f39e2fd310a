"""The ``cloud-shunt`` command.

Subcommands:

``cloud-shunt aio [--state-dir DIR]``
    Start an all-in-one Swift cluster with an S3 endpoint on 127.0.0.1 (see
    :mod:`shunt.tools.aio`), print how to use it and keep it running until
    Ctrl-C
    or SIGTERM.
``cloud-shunt demo [--state-dir DIR] [--check]``
    The same, seeded with a mapped container ``archive`` of ``AUTH_test``
    holding local objects and objects found only in the bucket. ``--check``
    reads the archived objects through the proxy, verifies them, prints
    ``OK`` and exits (0 on success) instead of staying up.
``cloud-shunt check-config [PATH] [--no-probe] [--timeout S] ...``
    Validate a mapping file as the middleware does, then probe every
    shunted profile's bucket and print a table; exit 0 when all is well,
    1 otherwise (see :mod:`shunt.tools.checks`).
``cloud-shunt sync-status CONFIG [--json] [--dry-run]``
    On a container node: what the sync daemon did and has left to do per
    mapped container DB (see :mod:`shunt.daemon.status`); ``--dry-run``
    lists what a pass would act on now.
``cloud-shunt locate [--conf PATH] ACCOUNT CONTAINER OBJECT``
    Print the endpoint, bucket and key where an object of a mapped
    container is archived (and its SLO manifest sidecar's key); exit 1
    when the container is not mapped.

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
                      reload_interval=args.reload_interval)
    cluster.start()
    print(f'Cluster up in {time.monotonic() - started:.1f}s.\n', flush=True)
    return cluster


def swift_command():
    """The ``swift`` client of the Python running this (the project's
    virtualenv): the one on PATH may be another, or none."""
    here = os.path.join(os.path.dirname(sys.executable), 'swift')
    return shlex.quote(here) if os.access(here, os.X_OK) else 'swift'


def bucket_listing(cluster):
    """A shell command listing the bucket's keys with what is installed
    (boto3 of this Python; no AWS CLI needed)."""
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
S3 endpoint     {cluster.s3_endpoint}
  credentials   {cluster.s3_key} / {cluster.s3_secret}
  bucket        {cluster.bucket}
Mapping file    {cluster.mapping_file}
  (re-read every {cluster.reload_interval:g}s; make profiles with
  "merge_namespaces": true and the endpoint/credentials above)
State dir       {cluster.state_dir}
Proxy log       {cluster.proxy_log_path}

Try:
  export ST_AUTH={cluster.auth_url} ST_USER=test:tester ST_KEY=testing
  {swift} stat
  {swift} upload mycontainer README.rst
  curl -i -H 'X-Auth-Token: {token}' {storage_url}
  {bucket_listing(cluster)}
""", flush=True)
    return storage_url, token


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
            storage_url, token = _print_endpoints(cluster)
            if demo:
                _print_demo(cluster, demo, storage_url, token)
            if check:
                return check(cluster, demo)
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
# the default bucket with the hashed layout
DEMO_ACCOUNT = 'AUTH_test'
DEMO_CONTAINER = 'archive'
DEMO_LOCAL = {
    'readme.txt': b'This object is stored in Swift.\n',
    'local/notes.txt': b'Local objects are served by Swift as usual.\n',
}
DEMO_UNICODE_NAME = 'caf\u00e9-men\u00fc.txt'
# name -> (body, S3 user metadata, content type)
DEMO_ARCHIVED = {
    'report.txt': (b'Archived report: this object exists only in the S3 '
                   b'bucket.\n', {'author': 'demo', 'color': 'blue'},
                   'text/plain'),
    DEMO_UNICODE_NAME: ('Unicode name, archived: caf\u00e9 cr\u00e8me '
                        '\u2615\n'.encode('utf-8'), {},
                        'text/plain; charset=utf-8'),
    '2019/january.csv': (b'day,visits\n1,17\n2,23\n', {}, 'text/csv'),
}


def seed_demo(cluster):
    """Map ``AUTH_test/archive`` to the bucket, create it with local
    objects and put archived-only objects into the bucket."""
    cluster.write_mappings([cluster.profile(DEMO_ACCOUNT, DEMO_CONTAINER)])
    # the proxy would see the new file only after its reload interval
    cluster.restart_proxy()
    conn = cluster.swift_conn()
    conn.put_container(DEMO_CONTAINER)
    for name, body in DEMO_LOCAL.items():
        conn.put_object(DEMO_CONTAINER, name, body,
                        content_type='text/plain')
    keys = {}
    for name, (body, metadata, content_type) in DEMO_ARCHIVED.items():
        keys[name] = cluster.archive_object(
            DEMO_ACCOUNT, DEMO_CONTAINER, name, body, metadata=metadata,
            content_type=content_type)
    return keys


def _print_demo(cluster, keys, storage_url, token):
    swift = demo_swift(cluster)
    lines = [f'Demo: container {DEMO_CONTAINER!r} of {DEMO_ACCOUNT} is '
             f'mapped to bucket {cluster.bucket!r}.',
             '  local objects:    ' + ', '.join(DEMO_LOCAL),
             '  archived only:    ' + ', '.join(DEMO_ARCHIVED),
             '  bucket keys:      ' + ', '.join(keys.values()),
             '',
             'See them through Swift:',
             f'  {swift} list {DEMO_CONTAINER}']
    for name in DEMO_ARCHIVED:
        lines.append(f"  {swift} download {DEMO_CONTAINER} '{name}' -o -")
    lines.append(f'  {swift} stat {DEMO_CONTAINER} report.txt')
    url = f'{storage_url}/{DEMO_CONTAINER}'
    lines += [f"  curl -i -H 'X-Auth-Token: {token}' {url}/report.txt",
              f"  curl -i -H 'X-Auth-Token: {token}' -H 'Range: bytes=0-12' "
              f"{url}/{quote(DEMO_UNICODE_NAME)}",
              f"  curl -i -H 'X-Auth-Token: {token}' "
              f"-H 'X-Cloud-Sync-Shunt-Bypass: true' {url}/report.txt"
              f"   # local only: 404",
              '']
    print('\n'.join(lines), flush=True)


def check_demo(cluster, keys):
    """Read every archived demo object through the proxy; 0 when all are
    served with their bodies."""
    conn = cluster.swift_conn()
    from swiftclient.exceptions import ClientException
    failures = []
    for name, (body, _, _) in DEMO_ARCHIVED.items():
        try:
            headers, got = conn.get_object(DEMO_CONTAINER, name)
        except ClientException as err:
            failures.append(f'GET {DEMO_CONTAINER}/{name}: {err}')
            continue
        if got != body:
            failures.append(f'GET {DEMO_CONTAINER}/{name}: body '
                            f'{got[:60]!r} != {body[:60]!r}')
        print(f'GET {DEMO_CONTAINER}/{name}: {len(got)} bytes from '
              f'{headers.get("content-location", "?")}', flush=True)
    for name, body in DEMO_LOCAL.items():
        _, got = conn.get_object(DEMO_CONTAINER, name)
        if got != body:
            failures.append(f'GET {DEMO_CONTAINER}/{name}: local body '
                            f'differs')
    failures += check_printed_commands(cluster, keys)
    if failures:
        print('FAILED:\n  ' + '\n  '.join(failures), file=sys.stderr,
              flush=True)
        print(f'(proxy log: {cluster.proxy_log_path})', file=sys.stderr)
        return 1
    print('OK', flush=True)
    return 0


def check_printed_commands(cluster, keys):
    """Run the listing commands the demo prints, as a person pasting them
    into a shell would; the failures found."""
    failures = []
    expected = {
        f'{demo_swift(cluster)} list {DEMO_CONTAINER}':
            set(DEMO_LOCAL) | set(DEMO_ARCHIVED),
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
                     'AUTH_test with local objects and objects that exist '
                     'only in the bucket, and commands that show them.')
@_cluster_arguments
@argument('--check', action='store_true',
          help='read the archived objects through the proxy, print OK and '
               'exit 0 if they are served correctly (non-interactive)')
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
                     'ListObjects of one key, and print a table. Exit '
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
                     'of its SLO manifest sidecar, using the mapping '
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
    from shunt.tools import checks as tools
    return tools.locate(
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
