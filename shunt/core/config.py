"""The mapping file: which Swift containers are backed by which bucket.

The file is the ``sync.json`` of swift-s3-sync/1space, so an existing one can
be pointed at directly::

    {"containers": [
        {"account": "AUTH_test", "container": "photos",
         "aws_bucket": "archive", "aws_endpoint": "http://s3.example.com",
         "aws_identity": "KEY", "aws_secret": "SECRET",
         "merge_namespaces": true, "restore_object": false}
    ]}

Only profiles with ``merge_namespaces: true`` are served by the shunt; others
(plain sync/archive profiles) are skipped with one INFO line each. The sync
daemon (:mod:`shunt.daemon`) reads the same file and handles *every*
profile, like 1space's daemon did. Keys neither program uses are accepted
and ignored.

Profile fields read by the shunt:

``account`` (required)
    Swift account, e.g. ``AUTH_test``.
``container`` (required)
    Swift container, or ``/*`` for every container of the account. A profile
    for an exact container wins over the account's ``/*`` profile.
``aws_bucket``, ``aws_identity``, ``aws_secret`` (required)
    The bucket and its credentials.
``aws_endpoint``
    Endpoint URL of an S3-compatible store; absent or empty means AWS S3.
``aws_session_token``
    Optional temporary-credentials token.
``aws_region``
    Signing region (default: the filter's ``s3_region``).
``signature_version``
    ``s3v4`` (default) or ``s3`` (SigV2, for old S3 clones).
``addressing_style``
    ``path``, ``virtual`` or ``auto`` (default: path for non-AWS endpoints).
``custom_prefix``
    Key prefix instead of the hashed layout (see :mod:`shunt.core.layout`).
    S3 only: refused on a ``swift`` profile.
``protocol``
    ``s3`` (default) or ``swift`` (another Swift cluster, see below).
``restore_object``
    Write archived objects back into Swift when they are read whole (see
    :mod:`shunt.proxy.restore`).
``restore_ttl``
    Seconds a restored copy lives: restored objects (and their SLO
    segments) get ``X-Delete-At`` = restore time + ``restore_ttl``, so that
    reading cold data back does not refill the cluster for good. Absent or
    ``0``: restored copies are kept.
``archive_restore_days``, ``archive_restore_tier``
    For objects in an archive storage class (GLACIER, DEEP_ARCHIVE): the
    first GET starts an S3 restore for this many days with this tier
    (``Standard``, ``Bulk``, ``Expedited``); 0 (default) starts none. Until
    it completes, GETs answer ``503`` with ``Retry-After``.
``propagate_delete``
    A DELETE through Swift also deletes the bucket copy (default ``false``:
    the copy is kept in the bucket and hidden, see :mod:`shunt.proxy.writes`).
    The sync daemon reads the same key for the delete *rows* it finds in
    the container DB, with 1space's default ``true`` when the key is absent
    (see "Deletes" below).

Remote Swift profiles (``"protocol": "swift"``) map a container to a
container of another Swift cluster, with 1space's keys::

    {"account": "AUTH_test", "container": "photos", "protocol": "swift",
     "aws_endpoint": "https://swift2.example.com/auth/v1.0",
     "aws_identity": "archive:tester", "aws_secret": "KEY",
     "aws_bucket": "photos-archive", "merge_namespaces": true}

``aws_endpoint`` (required)
    The remote cluster's auth URL (``http://`` or ``https://``): tempauth's
    ``.../auth/v1.0`` or Keystone's ``.../v3`` (``.../v2.0``).
``aws_identity``, ``aws_secret``
    The remote user and key (tempauth: ``account:user``; Keystone: the
    user name and password).
``aws_bucket``
    The remote container; for a ``/*`` profile the prefix of the remote
    container names: local container ``c`` is archived in
    ``<aws_bucket>c``. Object names are kept as they are (no hashed
    prefix); large-object segments go to ``<remote container>_segments``.
``auth_type``
    ``swift`` (default: tempauth / auth v1), ``keystone_v3`` (needs
    ``project_name``, ``project_domain_name`` and ``user_domain_name``) or
    ``keystone_v2`` (needs ``tenant_name``). Keystone needs the
    ``python-keystoneclient`` package on the proxy and daemon hosts
    (``pip install 'swift-cloud-shunt[keystone]'``; python-swiftclient's
    Keystone path; without it every request of the profile fails with a
    message saying so).
``project_name``, ``project_domain_name``, ``user_domain_name``,
``tenant_name``
    The Keystone scope.
``remote_account``
    Use this account instead of the user's own: the storage URL the auth
    service returns becomes ``<scheme>://<host[:port]>/v1/<remote_account>``
    (any path before ``/v1`` is dropped). The user needs access to it.
``storage_policy``
    Storage policy of the remote containers the sync daemon creates (by
    default the remote cluster's default policy).

S3-only keys (``aws_region``, ``signature_version``, ``addressing_style``,
``aws_session_token``, archive restores) are ignored on a swift profile.

Profile fields read by the sync daemon (1space's keys and defaults):

``copy_after`` (seconds, default ``0``)
    An object is copied only once its last PUT or POST is this old.
``retain_local`` (default ``true``)
    ``true``: **sync** mode, the bucket is a copy of the container and the
    local objects stay. ``false``: **archive** mode, the local copy is
    deleted once the bucket holds a verified copy of exactly that version
    (the shunt, ``merge_namespaces``, serves it back).
``retain_local_segments`` (default ``false``)
    Archive mode only: ``true`` keeps the local segments of archived large
    objects.
``exclude_pattern``
    A Python regular expression; objects whose names match it (from the
    start, :func:`re.match`) are neither copied nor deleted remotely. Empty
    or absent excludes nothing (unlike 1space, where ``""`` excluded all).
``selection_criteria``
    Only objects whose metadata match are copied. A criterion is an object
    with exactly one key: ``{"AND": [criteria]}``, ``{"OR": [criteria]}``,
    ``{"NOT": criterion}``, or ``{"<header name>": "<value>"}`` (compared
    case-insensitively with the object's header, e.g.
    ``{"x-object-meta-tier": "cold"}``). ``{}`` or absent selects all.

Deletes: a DELETE *through the proxy* of a shunted container is the
shunt's (``propagate_delete`` absent = false: the bucket copy stays and is
hidden); a delete *row* the daemon finds in the container DB (any DELETE,
whichever way it reached Swift) deletes the bucket copy when
``propagate_delete`` is true or absent (1space's default), guarded so that
a bucket copy newer than the tombstone is never deleted. The daemon's own
archive tombstones are never propagated. For a shunted profile, set the
key explicitly so both programs agree: ``false`` keeps deleted objects in
the bucket (hidden by the shunt), ``true`` deletes them there at once.
Absent, the shunt first hides the bucket copy and the daemon's next pass
deletes it.

Booleans must be JSON ``true``/``false`` (the strings ``"true"``/``"false"``,
``"yes"``/``"no"``, ``"on"``/``"off"``, ``"1"``/``"0"`` are accepted; any
other value is an error, never "truthy").

Errors name the file, the profile index and the field. At start-up an error
stops the proxy; on reload the previous mappings stay in force.
"""

import dataclasses
import json
import os
import re
import time

from swift.common.utils.config import TRUE_VALUES

ALL_CONTAINERS = '/*'
PROTOCOLS_SUPPORTED = ('s3', 'swift')
# 1space's names; ``swift`` is tempauth-style auth v1
AUTH_TYPES = ('swift', 'keystone_v2', 'keystone_v3')
# what each Keystone flavour needs besides the user and key
AUTH_REQUIRED = {'keystone_v2': ('tenant_name',),
                 'keystone_v3': ('project_name', 'project_domain_name',
                                 'user_domain_name')}
SIGNATURE_VERSIONS = ('s3v4', 's3')
FALSE_VALUES = frozenset(('false', '0', 'no', 'off', 'f', 'n'))
ADDRESSING_STYLES = ('auto', 'path', 'virtual')
RESTORE_TIERS = ('Standard', 'Bulk', 'Expedited')


class ConfigError(ValueError):
    """The mapping file (or one profile of it) is not usable."""


@dataclasses.dataclass(frozen=True)
class Profile:
    """One shunted mapping, validated.

    ``container`` is the effective container: :meth:`Mappings.lookup` fills
    it in for ``/*`` profiles.
    """
    index: int
    account: str
    container: str
    aws_bucket: str
    aws_identity: str
    aws_secret: str = dataclasses.field(repr=False)
    aws_endpoint: str = ''
    aws_session_token: str | None = dataclasses.field(default=None,
                                                      repr=False)
    aws_region: str | None = None
    signature_version: str | None = None
    addressing_style: str | None = None
    custom_prefix: str | None = None
    protocol: str = 's3'
    restore_object: bool = False
    restore_ttl: int | None = None
    # None when absent: the shunt reads it as false, the daemon as true
    propagate_delete: bool | None = None
    archive_restore_days: int = 0
    archive_restore_tier: str = 'Standard'
    all_containers: bool = False
    merge_namespaces: bool = False
    # the sync daemon's keys
    copy_after: int = 0
    retain_local: bool = True
    retain_local_segments: bool = False
    exclude_pattern: re.Pattern | None = None
    selection_criteria: dict | None = dataclasses.field(default=None,
                                                        hash=False)
    # protocol "swift" only
    auth_type: str = 'swift'
    tenant_name: str | None = None
    project_name: str | None = None
    project_domain_name: str | None = None
    user_domain_name: str | None = None
    remote_account: str | None = None
    storage_policy: str | None = None
    # every other key of the profile, secrets removed, for later features
    extra: dict = dataclasses.field(default_factory=dict, compare=False,
                                    repr=False, hash=False)

    def for_container(self, container):
        return dataclasses.replace(self, container=container)

    def describe(self):
        """A log-safe one-line description (no secrets)."""
        where = _without_userinfo(self.aws_endpoint) or 'AWS S3'
        what = 'container' if self.protocol == 'swift' else 'bucket'
        return (f'profile #{self.index} ({self.account}/'
                f'{ALL_CONTAINERS if self.all_containers else self.container}'
                f' -> {where} {what} {self.aws_bucket})')


def _without_userinfo(url):
    scheme, sep, rest = url.partition('://')
    if not sep:
        return url
    netloc, slash, path = rest.partition('/')
    return f'{scheme}://{netloc.rsplit("@", 1)[-1]}{slash}{path}'


SECRET_KEYS = frozenset(('aws_secret', 'aws_session_token'))


def _where(path, index, field=None):
    loc = f'{path}: containers[{index}]'
    return f'{loc}.{field}' if field else loc


def parse_bool(value, path, index, field, default=False):
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in TRUE_VALUES:
            return True
        if lowered in FALSE_VALUES:
            return False
    raise ConfigError(f'{_where(path, index, field)}: expected true or false,'
                      f' got {json.dumps(value)}')


def _string(raw, path, index, field, required=False, default=None):
    value = raw.get(field)
    if value is None:
        if required:
            raise ConfigError(
                f'{_where(path, index, field)}: required field is missing')
        return default
    if not isinstance(value, str):
        raise ConfigError(f'{_where(path, index, field)}: expected a string,'
                          f' got {type(value).__name__}')
    if required and not value:
        raise ConfigError(f'{_where(path, index, field)}: must not be empty')
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        # a lone \uDXXX escape in the JSON: no key or URL can hold it
        raise ConfigError(f'{_where(path, index, field)}: not valid UTF-8 '
                          f'(a lone surrogate escape)')
    return value


def _seconds(raw, path, index, field):
    value = raw.get(field)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f'{_where(path, index, field)}: expected a whole '
                          f'number of seconds, got {json.dumps(value)}')
    return value or None


def _whole(raw, path, index, field):
    value = raw.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f'{_where(path, index, field)}: expected a whole '
                          f'number of days, got {json.dumps(value)}')
    return value


def _choice(raw, path, index, field, choices):
    value = _string(raw, path, index, field)
    if value is not None and value not in choices:
        raise ConfigError(f'{_where(path, index, field)}: {value!r} is not '
                          f'one of {", ".join(choices)}')
    return value


def _count(raw, path, index, field, default=0):
    value = raw.get(field)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f'{_where(path, index, field)}: expected a whole '
                          f'number of seconds, got {json.dumps(value)}')
    return value


def _pattern(raw, path, index, field):
    value = _string(raw, path, index, field)
    if not value:
        return None
    try:
        return re.compile(value)
    except re.error as err:
        raise ConfigError(f'{_where(path, index, field)}: not a valid '
                          f'regular expression: {err}')


CRITERIA_OPERATORS = ('AND', 'OR', 'NOT')


def check_criteria(value, where):
    """Validate a ``selection_criteria`` criterion (see the module
    docstring); ``where`` names it in errors."""
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: expected an object, got '
                          f'{type(value).__name__}')
    if len(value) != 1:
        raise ConfigError(f'{where}: expected exactly one key (AND, OR, NOT '
                          f'or a header name), got {len(value)}')
    ((key, operand),) = value.items()
    if key in ('AND', 'OR'):
        if not isinstance(operand, list):
            raise ConfigError(f'{where}.{key}: expected a list of criteria')
        for number, item in enumerate(operand):
            check_criteria(item, f'{where}.{key}[{number}]')
    elif key == 'NOT':
        check_criteria(operand, f'{where}.NOT')
    elif not key.strip():
        raise ConfigError(f'{where}: empty header name')
    elif not isinstance(operand, str):
        raise ConfigError(f'{where}.{key}: expected a string value, got '
                          f'{json.dumps(operand)}')


def _criteria(raw, path, index, field):
    value = raw.get(field)
    if value is None or value == {}:
        return None
    check_criteria(value, _where(path, index, field))
    return value


def parse_profile(raw, path, index, shunted_only=True):
    """Validate one entry of ``containers``; return a :class:`Profile`, or
    None when the entry is not shunted (no ``merge_namespaces``) and
    ``shunted_only`` (the shunt's view; the daemon takes every profile)."""
    if not isinstance(raw, dict):
        raise ConfigError(f'{_where(path, index)}: expected an object, got '
                          f'{type(raw).__name__}')
    merge = parse_bool(raw.get('merge_namespaces'), path, index,
                       'merge_namespaces')
    if shunted_only and not merge:
        return None
    protocol = _string(raw, path, index, 'protocol', default='s3')
    if protocol not in PROTOCOLS_SUPPORTED:
        raise ConfigError(f'{_where(path, index, "protocol")}: unknown '
                          f'protocol {protocol!r} (supported: '
                          f'{", ".join(PROTOCOLS_SUPPORTED)})')
    account = _string(raw, path, index, 'account', required=True)
    if '/' in account:
        raise ConfigError(
            f'{_where(path, index, "account")}: must not contain "/"')
    container = _string(raw, path, index, 'container', required=True)
    if container != ALL_CONTAINERS and '/' in container:
        raise ConfigError(f'{_where(path, index, "container")}: must be a '
                          f'container name or "/*"')
    endpoint = _string(raw, path, index, 'aws_endpoint', default='',
                       required=protocol == 'swift')
    if endpoint and not endpoint.lower().startswith(('http://', 'https://')):
        raise ConfigError(f'{_where(path, index, "aws_endpoint")}: expected '
                          f'an http:// or https:// URL')
    custom_prefix = _string(raw, path, index, 'custom_prefix')
    swift_keys = {}
    if protocol == 'swift':
        if custom_prefix is not None:
            raise ConfigError(
                f'{_where(path, index, "custom_prefix")}: not used by '
                f'protocol "swift" (objects keep their names in the remote '
                f'container); remove it')
        # the layout functions take '' as "the object name itself"
        custom_prefix = ''
        swift_keys = _swift_keys(raw, path, index)
    profile = Profile(
        index=index,
        account=account,
        container=container,
        all_containers=container == ALL_CONTAINERS,
        aws_bucket=_string(raw, path, index, 'aws_bucket', required=True),
        aws_identity=_string(raw, path, index, 'aws_identity',
                             required=True),
        aws_secret=_string(raw, path, index, 'aws_secret', required=True),
        aws_endpoint=endpoint.rstrip('/'),
        aws_session_token=_string(raw, path, index, 'aws_session_token')
        or None,
        aws_region=_string(raw, path, index, 'aws_region') or None,
        signature_version=_choice(raw, path, index, 'signature_version',
                                  SIGNATURE_VERSIONS),
        addressing_style=_choice(raw, path, index, 'addressing_style',
                                 ADDRESSING_STYLES),
        custom_prefix=custom_prefix,
        protocol=protocol,
        restore_object=parse_bool(raw.get('restore_object'), path, index,
                                  'restore_object'),
        restore_ttl=_seconds(raw, path, index, 'restore_ttl'),
        propagate_delete=parse_bool(raw.get('propagate_delete'), path,
                                    index, 'propagate_delete', None),
        merge_namespaces=merge,
        copy_after=_count(raw, path, index, 'copy_after'),
        retain_local=parse_bool(raw.get('retain_local'), path, index,
                                'retain_local', True),
        retain_local_segments=parse_bool(raw.get('retain_local_segments'),
                                         path, index,
                                         'retain_local_segments'),
        exclude_pattern=_pattern(raw, path, index, 'exclude_pattern'),
        selection_criteria=_criteria(raw, path, index,
                                     'selection_criteria'),
        archive_restore_days=_whole(raw, path, index,
                                    'archive_restore_days'),
        archive_restore_tier=_choice(raw, path, index,
                                     'archive_restore_tier', RESTORE_TIERS)
        or 'Standard',
        extra={k: v for k, v in raw.items() if k not in SECRET_KEYS},
        **swift_keys,
    )
    return profile


def _swift_keys(raw, path, index):
    """The validated keys of a ``protocol: "swift"`` profile."""
    keys = {'auth_type': _choice(raw, path, index, 'auth_type', AUTH_TYPES)
            or 'swift'}
    for field in ('tenant_name', 'project_name', 'project_domain_name',
                  'user_domain_name', 'remote_account', 'storage_policy'):
        keys[field] = _string(raw, path, index, field) or None
    for field in AUTH_REQUIRED.get(keys['auth_type'], ()):
        if not keys[field]:
            raise ConfigError(
                f'{_where(path, index, field)}: required with auth_type '
                f'{keys["auth_type"]!r}')
    if keys['remote_account'] and '/' in keys['remote_account']:
        raise ConfigError(f'{_where(path, index, "remote_account")}: must '
                          f'not contain "/"')
    bucket = raw.get('aws_bucket')
    if isinstance(bucket, str) and '/' in bucket:
        raise ConfigError(f'{_where(path, index, "aws_bucket")}: a Swift '
                          f'container name must not contain "/"')
    return keys


class Mappings:
    """Validated profiles keyed by ``(account, container)``."""

    def __init__(self, profiles=(), skipped=()):
        self.by_key = {(p.account, p.container): p for p in profiles}
        # (index, account, container) of entries without merge_namespaces
        self.skipped = list(skipped)

    def __len__(self):
        return len(self.by_key)

    def __iter__(self):
        return iter(self.by_key.values())

    def lookup(self, account, container):
        """The profile for a container (exact first, then ``/*``), with the
        effective container filled in; None when it is not mapped."""
        profile = self.by_key.get((account, container))
        if profile is not None:
            return profile
        profile = self.by_key.get((account, ALL_CONTAINERS))
        if profile is not None:
            return profile.for_container(container)
        return None

    def accounts(self):
        return {account for account, _ in self.by_key}


def parse_mappings(data, path, shunted_only=True):
    """Validate a decoded mapping document; return :class:`Mappings`
    (only the shunted profiles unless ``shunted_only`` is false)."""
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected a JSON object with a '
                          f'"containers" list')
    entries = data.get('containers', [])
    if not isinstance(entries, list):
        raise ConfigError(f'{path}: "containers" must be a list')
    profiles, skipped, seen = [], [], {}
    for index, raw in enumerate(entries):
        profile = parse_profile(raw, path, index, shunted_only)
        if profile is None:
            skipped.append((index, raw.get('account'), raw.get('container')))
            continue
        key = (profile.account, profile.container)
        if key in seen:
            raise ConfigError(
                f'{_where(path, index)}: {profile.account}/'
                f'{profile.container} is already mapped by '
                f'containers[{seen[key]}]')
        seen[key] = index
        profiles.append(profile)
    return Mappings(profiles, skipped)


def load_mappings(path, shunted_only=True):
    """Read and validate the mapping file at ``path``."""
    try:
        with open(path, 'rb') as fp:
            raw = fp.read()
    except OSError as err:
        raise ConfigError(f'{path}: cannot read the mapping file: '
                          f'{err.strerror or err}')
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f'{path}: not valid JSON: {err}')
    except RecursionError:
        raise ConfigError(f'{path}: not valid JSON: nested too deeply')
    return parse_mappings(data, path, shunted_only)


class MappingSource:
    """The mappings in force, re-read when the file changes.

    The file is stat-ed at most every ``reload_interval`` seconds (per
    worker). A new version that fails validation is logged as an ERROR once
    and the last good mappings stay in force.
    """

    def __init__(self, path, reload_interval, logger, clock=time.monotonic,
                 shunted_only=True):
        self.path = path
        self.reload_interval = reload_interval
        self.logger = logger
        self.clock = clock
        self.shunted_only = shunted_only
        self._signature = self._stat()
        self.mappings = load_mappings(path, shunted_only)
        self._log_loaded()
        self._next_check = clock() + reload_interval

    def _stat(self):
        try:
            st = os.stat(self.path)
        except OSError as err:
            return ('missing', err.errno)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _log_loaded(self):
        for index, account, container in self.mappings.skipped:
            self.logger.info(
                'Mapping %s containers[%d] (%s/%s) is not shunted: '
                'merge_namespaces is not true', self.path, index, account,
                container)
        self.logger.info('Loaded %d %smapping(s) from %s',
                         len(self.mappings),
                         'shunted ' if self.shunted_only else '', self.path)

    def current(self):
        now = self.clock()
        if now >= self._next_check:
            self._next_check = now + self.reload_interval
            self._maybe_reload()
        return self.mappings

    def _maybe_reload(self):
        signature = self._stat()
        if signature == self._signature:
            return
        self._signature = signature
        try:
            mappings = load_mappings(self.path, self.shunted_only)
        except ConfigError as err:
            self.logger.error('Keeping the previous %d mapping(s): %s',
                              len(self.mappings), err)
            return
        self.mappings = mappings
        self._log_loaded()
