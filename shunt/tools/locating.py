"""Where an object of a mapped container is archived: the
``cloud-shunt locate`` command (see :mod:`shunt.tools.cli`).

:func:`locate` prints the profile mapping
the container (exact container first, then ``/*``, as the middleware
looks it up), its endpoint and bucket, the object's key and the key of
its SLO manifest sidecar (see :mod:`shunt.core.layout`). For a swift
profile: the auth endpoint, the remote container and the object's name
there (its own name), the listing location ``<auth URL>;<remote
container>``, the remote segments container and the object's URL
(``Content-Location``); no manifest sidecar (remote SLOs are native).

Nothing printed holds a credential (user info is removed from endpoints,
every line is scrubbed of each secret of the mapping file, as
:mod:`shunt.tools.checks` does); nothing remote is contacted.
"""

import dataclasses
import json
import urllib.parse

from shunt.core.config import ALL_CONTAINERS, ConfigError, load_mappings
from shunt.core.layout import manifest_key, object_key
from shunt.core.remote import location_label, object_url
from shunt.core.stores import is_swift
from shunt.tools import swift_checks
from shunt.tools.checks import _Output, _secrets_of, scope


@dataclasses.dataclass
class Location:
    account: str
    container: str
    object: str
    key: str
    manifest_key: str | None
    profile_index: int | None = None
    mapped_by: str | None = None
    endpoint: str | None = None
    bucket: str | None = None
    url: str | None = None
    protocol: str | None = None
    # swift profiles: see shunt.tools.swift_checks.location_fields
    remote_container: str | None = None
    segments_container: str | None = None
    listing_location: str | None = None

    def as_dict(self):
        return dataclasses.asdict(self)


class LocateError(Exception):
    """A name no archive key can be made of (exit status 2)."""


def check_names(account, container, obj):
    for what, value in (('account', account), ('container', container),
                        ('object', obj)):
        if not value:
            raise LocateError(f'the {what} name is empty')
        try:
            value.encode('utf-8')
        except UnicodeEncodeError:
            raise LocateError(f'the {what} name is not valid UTF-8')
    if '/' in account or '/' in container:
        raise LocateError('account and container names cannot contain "/"')


def locate_in(mappings, account, container, obj):
    """The :class:`Location` of an object of a mapped container, or None
    when the container is not mapped."""
    check_names(account, container, obj)
    profile = mappings.lookup(account, container)
    if profile is None:
        return None
    cp = profile.custom_prefix
    key = object_key(account, container, obj, cp)
    common = dict(
        account=account, container=container, object=obj, key=key,
        profile_index=profile.index,
        mapped_by=scope(profile.account, ALL_CONTAINERS
                        if profile.all_containers else container),
        endpoint=location_label(profile), bucket=profile.aws_bucket,
        protocol=profile.protocol)
    if is_swift(profile):
        # remote SLOs are native: no manifest sidecar
        return Location(manifest_key=None, **common,
                        **swift_checks.location_fields(profile, key))
    return Location(manifest_key=manifest_key(account, container, obj, cp),
                    url=object_url(profile, key), **common)


def locate_layout(account, container, obj, custom_prefix=None):
    """The keys of an object by the layout alone (no mapping file)."""
    check_names(account, container, obj)
    return Location(
        account=account, container=container, object=obj,
        key=object_key(account, container, obj, custom_prefix),
        manifest_key=manifest_key(account, container, obj, custom_prefix))


def _not_mapped(mappings, path, account, container):
    lines = [f'{account}/{container} is not mapped in {path}: no shunted '
             f'profile for {account}/{container} nor for {account}/*']
    for index, acc, cont in mappings.skipped:
        if acc == account and cont in (container, ALL_CONTAINERS):
            lines.append(f'(containers[{index}] maps {scope(acc, cont)} but '
                         f'is not shunted: merge_namespaces is not true)')
    return lines


def locate(out, err, account, container, obj, conf=None, use_conf=True,
           custom_prefix=None, quoted=False, as_json=False):
    """The ``locate`` command; returns the exit status (0: located; 1: the
    mapping file is invalid or does not map the container; 2: a name no
    key can be made of)."""
    if quoted:
        account, container, obj = (
            urllib.parse.unquote(v, errors='surrogateescape')
            for v in (account, container, obj))
    error = _Output(err)
    try:
        if not use_conf or custom_prefix is not None:
            where = locate_layout(account, container, obj, custom_prefix)
            secrets = ()
        else:
            try:
                mappings = load_mappings(conf)
            except ConfigError as exc:
                error(f'cloud-shunt: {exc}')
                return 1
            secrets = _secrets_of(mappings)
            where = locate_in(mappings, account, container, obj)
            if where is None:
                for line in _not_mapped(mappings, conf, account, container):
                    _Output(err, secrets)(f'cloud-shunt: {line}')
                return 1
    except LocateError as exc:
        error(f'cloud-shunt: {exc}')
        return 2
    say = _Output(out, secrets)
    if as_json:
        say(json.dumps(where.as_dict(), ensure_ascii=False))
        return 0
    rows = [('object', f'{account}/{container}/{obj}')]
    if where.remote_container is not None:
        rows += [('profile', f'containers[{where.profile_index}] '
                             f'({where.mapped_by}, protocol swift)'),
                 ('endpoint', f'{where.endpoint}  (auth)'),
                 ('container', f'{where.remote_container}  (remote)'),
                 ('name', where.key),
                 ('listing', where.listing_location),
                 ('segments', f'{where.segments_container}  (SLO '
                              f'segments: <container>/<segment name>)'),
                 ('url', where.url)]
        for name, value in rows:
            say(f'{name:<9} {value}')
        return 0
    if where.profile_index is not None:
        rows += [('profile', f'containers[{where.profile_index}] '
                             f'({where.mapped_by})'),
                 ('endpoint', where.endpoint), ('bucket', where.bucket)]
    else:
        rows += [('layout', 'custom_prefix %s' % json.dumps(custom_prefix)
                  if custom_prefix is not None else 'hashed'),
                 ('bucket', '(not known without the mapping file)')]
    rows += [('key', where.key), ('manifest', where.manifest_key +
                                  '  (SLO manifest sidecar)')]
    if where.url:
        rows.append(('url', where.url))
    for name, value in rows:
        say(f'{name:<9} {value}')
    return 0
