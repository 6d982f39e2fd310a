"""Operator checks: is the mapping file right (``cloud-shunt
check-config``, see :mod:`shunt.tools.cli`; where an object lives,
``cloud-shunt locate``, is :mod:`shunt.tools.locating`).

:func:`check_config`
    Validates the mapping file with :func:`shunt.core.config.load_mappings`,
    the very function the middleware loads it with (same errors, same message
    naming the file, the profile index and the field), lists the profiles
    that are not shunted (no ``merge_namespaces``), then probes every
    shunted profile through :class:`shunt.core.stores.Remotes`, built as
    the middleware builds it (for S3: one boto3 client per endpoint and
    credentials, the same region, signature and addressing rules; for
    ``"protocol": "swift"``: the remote Swift client with the profile's
    auth), with ``--timeout`` for connecting and reading and no retry, and
    prints a table.

    An S3 probe is one ``ListObjects`` with ``MaxKeys=1`` under the
    profile's key prefix: it proves that the endpoint answers, that the
    credentials are accepted, that the bucket exists and that something is
    archived under the prefix. A ``/*`` profile with the hashed layout has a
    prefix per container, so only its bucket is probed (the result says
    so); a ``/*`` profile with a ``custom_prefix`` has one prefix, which is
    probed.

    A swift probe authenticates, then lists one name of the remote
    container (its ``bucket`` column); a remote container not created yet
    is OK (the sync daemon creates it). A swift ``/*`` profile has one
    remote container per local container: only the auth and the account
    are probed (the result says so). See :mod:`shunt.tools.swift_checks`.

Nothing printed ever holds a credential: the tables are made of the
account, container, public endpoint (user info removed), bucket and
prefix, and of this module's own wording of an outcome with the S3 error
code or the remote Swift status (never a token, a storage URL or the
remote's own text); every line is also scrubbed of each secret of the
file.

:func:`check_config` writes to the given streams and returns the exit
status.
"""

import concurrent.futures
import dataclasses
import json

from shunt.core.config import ALL_CONTAINERS, ConfigError, load_mappings
from shunt.core.layout import key_prefix
from shunt.core.remote import RemoteError, location_label
from shunt.core.stores import Remotes, is_swift
from shunt.tools import swift_checks

DEFAULT_TIMEOUT = 5.0
DEFAULT_REGION = 'us-east-1'
# probes running at once (each waits on the network only)
PROBE_WORKERS = 8
REDACTED = '********'
# secrets shorter than this are not searched for in the output: they
# would garble it, and they are not secrets anyone should use
MIN_SECRET_LENGTH = 4
# what an S3 error code may look like when shown
_CODE_CHARS = frozenset(
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.')

OK = 'OK'
FAIL = 'FAIL'
NOT_PROBED = 'not probed'


# -- output -------------------------------------------------------------

class _Output:
    """Lines to a text stream, scrubbed of secrets, never failing on
    characters the stream's encoding lacks (a mapping file may hold lone
    surrogates)."""

    def __init__(self, stream, secrets=()):
        self.stream = stream
        self.secrets = sorted(
            {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH},
            key=len, reverse=True)

    def scrub(self, text):
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def __call__(self, text=''):
        text = self.scrub(text)
        encoding = getattr(self.stream, 'encoding', None) or 'utf-8'
        text = text.encode(encoding, 'backslashreplace').decode(encoding)
        self.stream.write(text + '\n')
        self.stream.flush()


def _secrets_of(profiles):
    secrets = set()
    for profile in profiles:
        secrets.add(profile.aws_secret)
        if profile.aws_session_token:
            secrets.add(profile.aws_session_token)
    return secrets


def _table(rows, headings):
    widths = [max(len(str(row[i])) for row in [headings] + rows)
              for i in range(len(headings))]

    def line(cells):
        return '  '.join(str(c).ljust(w) for c, w in
                         zip(cells, widths, strict=True)).rstrip()
    return [line(headings), line(['-' * w for w in widths])] + \
        [line(row) for row in rows]


def scope(account, container):
    """``account/container``, or ``account/*`` for a ``/*`` profile."""
    if container == ALL_CONTAINERS:
        return f'{account}/*'
    return f'{account}/{container}'


def _shown(value):
    """A value from the mapping file as printed (a skipped entry may hold
    anything)."""
    return value if isinstance(value, str) else json.dumps(value)


# -- check-config -------------------------------------------------------

@dataclasses.dataclass
class ProbeResult:
    ok: bool
    text: str

    @property
    def label(self):
        return f'{OK if self.ok else FAIL} {self.text}'.rstrip()


def probe_scope(profile):
    """``(prefix, whole_bucket)``: the key prefix a probe lists, and
    whether it is only the bucket that can be probed (a ``/*`` profile
    with the hashed layout has one prefix per container; a swift ``/*``
    profile one remote container per container)."""
    if is_swift(profile):
        return '', profile.all_containers
    if profile.all_containers and profile.custom_prefix is None:
        return '', True
    return key_prefix(profile.account, profile.container,
                      profile.custom_prefix), False


def _code(err):
    code = str(err.code or '')
    if code and len(code) <= 64 and set(code) <= _CODE_CHARS:
        return code
    return ''


def describe_failure(err, timeout):
    """This module's wording of a failed probe (never the remote's own
    message, which may quote a request or a signature)."""
    code = _code(err)
    suffix = f' ({code})' if code else ''
    if err.kind == 'client' and code == 'NoSuchBucket':
        return 'the bucket does not exist (NoSuchBucket)'
    if err.kind == 'auth':
        return f'the credentials were refused{suffix}'
    if err.kind == 'timeout':
        return f'no answer within {timeout:g}s'
    if err.kind == 'connection':
        return 'cannot connect to the endpoint'
    if err.kind == 'throttled':
        return f'the endpoint is throttling requests{suffix}'
    if err.kind == 'server':
        status = f' {err.status}' if err.status else ''
        return f'the endpoint failed{status}{suffix}'
    status = f' {err.status}' if err.status else ''
    return f'the endpoint refused the listing{status}{suffix}'


def probe(remote, profile, timeout=DEFAULT_TIMEOUT, allow_empty=False):
    """Probe one profile's bucket; a :class:`ProbeResult`."""
    if is_swift(profile):
        try:
            return ProbeResult(*swift_checks.probe(remote, profile,
                                                   allow_empty))
        except RemoteError as err:
            return ProbeResult(False, swift_checks.wording(err, timeout))
        except Exception as err:
            return ProbeResult(False, f'cannot use the profile '
                                      f'({type(err).__name__})')
    prefix, whole_bucket = probe_scope(profile)
    try:
        listing = remote.list_objects(profile, prefix=prefix, max_keys=1)
    except RemoteError as err:
        return ProbeResult(False, describe_failure(err, timeout))
    except Exception as err:
        # e.g. an endpoint or region botocore cannot build a client for;
        # only the kind of error is shown, its text may hold anything
        return ProbeResult(False, f'cannot use the profile '
                                  f'({type(err).__name__})')
    if whole_bucket:
        return ProbeResult(True, '(bucket only: "/*" profile, one prefix '
                                 'per container)')
    if listing.get('Contents'):
        return ProbeResult(True, '')
    if allow_empty:
        return ProbeResult(True, '(nothing archived under the prefix yet)')
    return ProbeResult(False, 'nothing archived under the prefix')


def make_remote(timeout=DEFAULT_TIMEOUT, region=DEFAULT_REGION):
    """A :class:`Remotes` as the middleware builds it, with ``timeout``
    for connecting and reading, and no retries (a probe must not hide a
    flaky endpoint)."""
    return Remotes.build(connect_timeout=timeout, read_timeout=timeout,
                         region=region, max_attempts=1)


def probe_all(remote, profiles, timeout=DEFAULT_TIMEOUT, allow_empty=False):
    """``{profile index: ProbeResult}``, probed concurrently."""
    profiles = list(profiles)
    if not profiles:
        return {}
    for profile in profiles:
        if is_swift(profile):
            continue  # authenticates on its first request
        try:
            # build the clients here, one thread: botocore's client
            # creation is not meant to race
            remote.client(profile)
        except Exception:
            pass  # reported by probe()
    workers = min(PROBE_WORKERS, len(profiles))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {p.index: pool.submit(probe, remote, p, timeout,
                                        allow_empty)
                   for p in profiles}
        return {index: future.result() for index, future in futures.items()}


def _prefix_cell(profile):
    if is_swift(profile):
        return '(remote container)'
    prefix, whole_bucket = probe_scope(profile)
    if whole_bucket:
        return f'<P>/{profile.account}/<container>/'
    return prefix or '(bucket root)'


def check_config(path, out, err, do_probe=True, timeout=DEFAULT_TIMEOUT,
                 region=DEFAULT_REGION, allow_empty=False, remote=None):
    """The ``check-config`` command; returns the exit status (0: valid and
    every probe OK; 1: invalid, or a probe failed)."""
    error = _Output(err)
    try:
        mappings = load_mappings(path)
    except ConfigError as exc:
        error(f'cloud-shunt: {exc}')
        return 1
    profiles = sorted(mappings, key=lambda p: p.index)
    say = _Output(out, _secrets_of(profiles))
    error = _Output(err, _secrets_of(profiles))
    say(f'{path}: valid; {len(profiles)} shunted profile(s), '
        f'{len(mappings.skipped)} not shunted')
    for index, account, container in mappings.skipped:
        say(f'  containers[{index}] '
            f'({scope(_shown(account), _shown(container))}): not shunted '
            f'(merge_namespaces is not true)')
    if not profiles:
        return 0
    if do_probe:
        own = remote is None
        remote = remote or make_remote(timeout, region)
        try:
            results = probe_all(remote, profiles, timeout, allow_empty)
        finally:
            if own:
                remote.close()
    else:
        results = {p.index: ProbeResult(True, NOT_PROBED)
                   for p in profiles}
    rows = []
    for profile in profiles:
        result = results[profile.index]
        rows.append([
            str(profile.index), scope(profile.account, profile.container),
            location_label(profile),
            swift_checks.container_cell(profile) if is_swift(profile)
            else profile.aws_bucket,
            _prefix_cell(profile),
            result.text if not do_probe else result.label])
    say()
    for line in _table(rows, ['#', 'account/container', 'endpoint',
                              'bucket', 'prefix', 'result']):
        say(line)
    if not do_probe:
        return 0
    failed = [p.index for p in profiles if not results[p.index].ok]
    say()
    if failed:
        say(f'{len(failed)} of {len(profiles)} profile(s) failed: '
            + ', '.join(f'containers[{i}]' for i in failed))
        return 1
    say(f'all {len(profiles)} profile(s) OK')
    return 0
