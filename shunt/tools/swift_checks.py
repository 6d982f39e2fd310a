"""The ``check-config`` probe and the ``locate`` answer of a profile with
``"protocol": "swift"`` (another Swift cluster as the archive; see
:mod:`shunt.tools.checks` and :mod:`shunt.tools.locating` for the commands).

Probe (through :meth:`shunt.core.stores.Remotes.request`, i.e. the remote
Swift client the middleware and the daemon use, with the probe's
timeouts):

* a profile for one container: the profile's auth (tempauth or Keystone,
  as configured), then one listing of its remote container (``GET
  ?format=json&limit=1``). A remote container that does not exist is OK:
  the sync daemon creates it on its first upload (the result says "not
  created yet"); one that exists but is empty is as an empty S3 prefix
  (FAIL unless ``--allow-empty``).
* a ``/*`` profile: its ``aws_bucket`` is a container-name prefix (one
  remote container per local container), so only the auth and the
  account (a ``HEAD`` of the storage URL, or of ``remote_account``'s) are
  probed; the result says so.

Failures are worded by this module (the credentials were refused, cannot
connect to the auth endpoint or to the storage URL it gave, no answer in
time...), never with the remote's own text: no token, key or storage
token ever appears.

Location: the remote container (``aws_bucket``, or ``aws_bucket`` +
the local container for ``/*``), the object's name there (the local name
itself), the container SLO segments go to (``<remote container>_segments``)
and the object's URL as ``Content-Location`` shows it (``<auth
URL>/<remote container>/<name>``, quoted; no user, no storage URL).
"""

import urllib.parse

from shunt.core.remote import RemoteError, public_endpoint
from shunt.core.swift_remote import remote_container, segments_container

LIST_ONE = {'format': 'json', 'limit': '1'}


def wording(err, timeout):
    """This module's wording of a failed swift probe."""
    status = f' ({err.status})' if err.status else ''
    at_auth = str(err.message).startswith('auth at ')
    if err.kind == 'auth':
        return f'the credentials were refused{status}'
    if err.kind == 'timeout':
        return f'no answer within {timeout:g}s'
    if err.kind == 'connection':
        if at_auth:
            return 'cannot connect to the auth endpoint'
        return 'cannot connect to the storage URL the auth endpoint gave'
    if err.kind == 'throttled':
        return f'the remote cluster is throttling requests{status}'
    if err.kind == 'server':
        where = 'the auth endpoint' if at_auth else 'the remote cluster'
        return f'{where} failed{status}'
    if err.kind == 'unavailable':
        return 'not tried: the remote cluster failed just before'
    return f'the remote cluster refused the request{status}'


def probe(remote, profile, allow_empty=False):
    """``(ok, text)`` for a swift profile; raises :class:`RemoteError`
    (worded by :func:`wording`) when the remote cannot be used."""
    if profile.all_containers:
        remote.request(profile, 'HEAD', '')
        return True, ('(auth and account only: "/*" profile, one remote '
                      'container per container)')
    try:
        resp = remote.request(profile, 'GET', remote_container(profile),
                              query=LIST_ONE)
    except RemoteError as err:
        if err.kind != 'not_found':
            raise
        return True, ('(remote container not created yet: the sync daemon '
                      'creates it)')
    if resp.status == 200 and resp.body.strip() not in (b'', b'[]'):
        return True, ''
    if allow_empty:
        return True, '(nothing archived in the remote container yet)'
    return False, 'nothing archived in the remote container'


def container_cell(profile):
    """The remote container as the check-config table shows it."""
    if profile.all_containers:
        return f'{profile.aws_bucket}<container>'
    return profile.aws_bucket


def object_location(profile, name):
    """``Content-Location`` of an archived object, as the proxy shows it
    (``profile`` looked up for its container)."""
    return '%s/%s/%s' % (public_endpoint(profile.aws_endpoint),
                         urllib.parse.quote(remote_container(profile)),
                         urllib.parse.quote(name))


def location_fields(profile, name):
    """The swift-only fields of ``locate``'s answer."""
    return {'remote_container': remote_container(profile),
            'segments_container': segments_container(profile),
            'listing_location': '%s;%s' % (
                public_endpoint(profile.aws_endpoint),
                remote_container(profile)),
            'url': object_location(profile, name)}
