"""Objects archived on another Swift cluster (``"protocol": "swift"``).

A swift profile's remote client (:mod:`shunt.core.swift_remote`) answers the
same calls as the S3 one, so plain objects, listings, restores and writes
take the ordinary paths. What differs is the remote cluster's own large
objects, which it keeps as native SLOs and DLOs and serves itself (its
``slo``/``dlo`` assemble the segments). The client reports them with
``x-swift-static-large-object`` / ``x-swift-object-manifest`` (never the
``x-amz-meta-*`` keys that mark an S3 sidecar SLO or an archived DLO
manifest, so neither of those paths is ever taken for a swift profile) and
the remote's quoted Etag (``x-swift-etag-quoted``). The shunt answers them
exactly as Swift answers the same local SLO or DLO:

SLO
    ``GET``/``HEAD``/ranges (single, suffix, several) are read from the
    remote cluster through its own SLO; the response has the quoted SLO
    ``Etag`` (conditionals, ``If-Match`` included, use it),
    ``X-Static-Large-Object: True`` and ``X-Manifest-Etag``.
    ``?multipart-manifest=get`` (and ``&format=raw``) answers the remote
    manifest, ``?part-number=N`` the Nth segment, both as Swift 2.38 does.
    The manifest is fetched with the remote's own ``?multipart-manifest=
    get`` (only for SLOs, and kept a minute per worker like S3 sidecars).

    Segment names: the sync daemon writes the segment ``/<c>/<name>`` of a
    local SLO as ``<c>/<name>`` in the remote segments container
    ``<remote container>_segments``. For objects the
    daemon wrote (they carry ``X-Object-Meta-Swift-Timestamp``) the manifest
    is shown with the local names again: ``/<remote container>_segments/
    <c>/<name>`` becomes ``/<c>/<name>``, so a client sees the manifest it
    uploaded, and ``X-Manifest-Etag`` is the MD5 of that manifest. Other
    writers' SLOs (1space, a client of the remote cluster) are shown with
    the remote cluster's names.

    Restore on read: an SLO whose manifest has plain segments only is
    restored as an SLO while it streams (see :mod:`shunt.proxy.restore`):
    the daemon's SLOs into their local segment names, other SLOs into
    ``<container>_segments/<object>/restore/...`` (never into local
    containers named after the remote cluster's).

DLO
    Served as the remote cluster serves it: the concatenated segments,
    its quoted DLO ``Etag``, ``X-Object-Manifest`` in the local form
    (``<remote container>_segments/<c>/<prefix>`` → ``<c>/<prefix>`` for
    the daemon's DLOs; other writers' values unchanged), single and suffix
    ranges; several ranges answer the whole object (Swift's ``dlo`` does
    the same). ``?multipart-manifest=get`` answers the manifest object
    itself (its own body and Etag), so a ``COPY`` with it copies the
    manifest and without it the concatenated object, as for a local DLO.
    A DLO of 10,000 segments or more, which Swift's ``dlo`` answers
    without ``Content-Length`` and ``Etag``, is streamed whole the same
    way. A remote DLO is never restored (its segments are the remote
    cluster's; Swift's ``dlo`` would read a restored manifest's segments
    from local Swift only).

Timestamps
    ``X-Timestamp`` and ``Last-Modified`` come from the daemon's
    ``X-Object-Meta-Swift-Timestamp`` (the local version's own timestamp)
    when the object has it; else from the remote cluster's own
    ``X-Timestamp``, which is shown but is another cluster's clock: deletes
    through the shunt decide such objects by the remote ``Last-Modified``
    with the window of doubt (``remote_clock_skew``, see
    :mod:`shunt.core.tombstones`), exactly as for an S3 store; only the
    daemon's timestamp is decided on Swift's own clock.

Listings
    The remote container is listed with Swift's own ``prefix``/``marker``/
    ``delimiter`` (names are object names: no key prefix, nothing
    reserved). Rows carry the remote row's ``content_type`` and, for an
    SLO, ``slo_etag`` (its ``hash`` is the MD5 of the manifest the remote
    cluster stores, with its own segment names) and ``content_location``
    ``["<auth URL>;<remote container>"]`` — without 1space's remote user
    name, which anyone allowed to list the container would learn.

Writes
    ``DELETE`` hides the archived copy as for S3 and, with
    ``propagate_delete``, deletes the remote object; a client's
    ``?multipart-manifest=delete`` of a remote SLO deletes its remote
    segments too (Swift's semantics for the local request). ``POST`` is a
    remote ``POST`` keeping the bookkeeping metadata.

The functions here that take no ``remote``/``ctx`` are pure.
"""

import dataclasses
import json
import urllib.parse

from swift.common.request_helpers import get_param
from swift.common.swob import (
    HTTPRequestedRangeNotSatisfiable,
    Response,
    str_to_wsgi,
)
from swift.common.utils import config_true_value

from shunt.core import headers as shunt_headers
from shunt.core import swift_shapes
from shunt.core.manifest import Manifest, ManifestError, parse_manifest
from shunt.core.remote import RemoteError, public_endpoint
from shunt.proxy import slo

SEGMENTS_SUFFIX = '_segments'
MANIFEST_HEADER = 'X-Object-Manifest'
# a DLO manifest object's own body larger than this is not answered for
# ``?multipart-manifest=get`` from memory (it streams, without ranges)
MAX_DLO_MANIFEST_BODY = 65536
# bytes read at a time from a remote DLO streamed without a length
READ_SIZE = 65536

_log_once = slo.LogOnce()


@dataclasses.dataclass(frozen=True)
class RemoteManifest(Manifest):
    """A remote SLO's manifest, ``local`` when its segment names were
    mapped back to the local ones (an SLO the sync daemon wrote)."""
    local: bool = False


manifests = slo.SidecarCache()


# -- pure ------------------------------------------------------------------

def is_swift(profile):
    return getattr(profile, 'protocol', 's3') == 'swift'


def written_by_daemon(raw):
    """Did this project's sync daemon write the remote object?"""
    return shunt_headers.archived_swift_timestamp(raw) is not None


def is_remote_slo(raw):
    return config_true_value(
        (raw.get(shunt_headers.SWIFT_SLO) or '').strip())


def remote_dlo_value(raw):
    """The remote object's ``X-Object-Manifest`` (native), or None."""
    value = raw.get(shunt_headers.SWIFT_DLO)
    if value is None:
        return None
    return shunt_headers._as_native(value).strip() or None


def default_segments_container(remote_container):
    return remote_container + SEGMENTS_SUFFIX


def local_segment_name(name, segments_container):
    """``/<segments container>/<c>/<obj>`` → ``/<c>/<obj>``; None for a
    name outside that layout."""
    head = '/%s/' % segments_container
    if not name.startswith(head):
        return None
    rest = name[len(head):]
    container, sep, obj = rest.partition('/')
    if not container or not sep or not obj:
        return None
    return '/' + rest


def local_manifest_body(body, segments_container):
    """The remote manifest (Swift's stored JSON) with every segment named
    as it is locally, serialized as Swift stores a manifest; None when a
    segment is not in the daemon's layout (the manifest is then shown
    as it is)."""
    try:
        entries = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if not isinstance(entry, dict):
            return None
        if 'data' in entry and 'name' not in entry:
            continue
        name = entry.get('name')
        local = local_segment_name(name, segments_container) \
            if isinstance(name, str) else None
        if local is None:
            return None
        entry['name'] = local
    return json.dumps(entries).encode('ascii')


def local_dlo_value(value, segments_container, ours):
    """A remote ``X-Object-Manifest`` value in its local form: the
    daemon's ``<segments container>/<c>/<prefix>`` → ``<c>/<prefix>``;
    anything else unchanged."""
    if not ours:
        return value
    for head in (segments_container + '/',
                 urllib.parse.quote(segments_container) + '/'):
        if value.startswith(head):
            rest = value[len(head):]
            if '/' in rest.lstrip('/') and not rest.startswith('/'):
                return rest
    return value


def checked(manifest, size, etag):
    """Raise :class:`ManifestError` unless the manifest describes the
    object the remote answered (``size`` bytes, SLO Etag ``etag``)."""
    if manifest.size != size:
        raise ManifestError(f'its segments add up to {manifest.size} bytes, '
                            f'the object has {size}')
    if etag and manifest.etag != etag:
        raise ManifestError(f'its SLO Etag is {manifest.etag}, the object '
                            f'has {etag}')


def parse_remote_manifest(body, segments_container, ours):
    """A :class:`RemoteManifest` from the remote's stored manifest."""
    local = local_manifest_body(body, segments_container) if ours else None
    parsed = parse_manifest(body if local is None else local)
    return RemoteManifest(parsed.segments, parsed.body,
                          local=local is not None)


def wants_whole_dlo(req):
    """Several ranges of a DLO: Swift's ``dlo`` ignores them and answers
    the whole object."""
    return bool(req.range) and len(req.range.ranges) > 1


# -- remote ------------------------------------------------------------------

def _names(remote, profile):
    container = remote.remote_container(profile)
    try:
        segments = remote.segments_container(profile)
    except AttributeError:
        segments = default_segments_container(container)
    return container, segments


def location(remote, profile):
    """The listings' ``content_location`` of a swift profile's rows:
    ``<auth URL>;<remote container>``. Unlike 1space's it does not name
    the remote user (anyone who may list the container would learn it),
    and the URL is shown without any user info or query."""
    return '%s;%s' % (public_endpoint(profile.aws_endpoint),
                      remote.remote_container(profile))


def object_location(remote, profile, key):
    """``Content-Location`` of an object served from a remote Swift:
    ``<auth URL>/<remote container>/<object>`` (quoted). The storage URL
    itself is not shown: it names the remote account."""
    return '%s/%s/%s' % (public_endpoint(profile.aws_endpoint),
                         urllib.parse.quote(remote.remote_container(profile)),
                         urllib.parse.quote(key))


def _read_body(resp, limit):
    body = resp.body
    if isinstance(body, bytes):
        return body
    chunks, size = [], 0
    try:
        for chunk in body:
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
    finally:
        close = getattr(body, 'close', None)
        if close:
            close()
    return b''.join(chunks)


def load_manifest(remote, profile, key, raw, size, logger, cache=None):
    """The :class:`RemoteManifest` of a remote SLO, or None when it cannot
    be used (logged once; the object is then served without one).
    Outages raise :class:`RemoteError`."""
    cache = manifests if cache is None else cache
    container, segments = _names(remote, profile)
    etag = shunt_headers.bare_etag(raw.get('etag'))
    cache_key = (profile.aws_endpoint, container, key, etag, size,
                 raw.get('last-modified'))
    known, manifest = cache.get(cache_key)
    if known:
        return manifest
    try:
        resp = remote.request(profile, 'GET', container, key,
                              query={'multipart-manifest': 'get'})
        body = _read_body(resp, slo.MAX_SIDECAR_BYTES)
    except RemoteError as err:
        if err.kind != 'not_found':
            raise
        return None  # gone since: not cached
    try:
        manifest = parse_remote_manifest(body, segments,
                                         written_by_daemon(raw))
        checked(manifest, size, etag)
    except ManifestError as err:
        if _log_once(('bad', container, key, etag)):
            logger.warning('Ignoring the manifest of the remote SLO %r (%s):'
                           ' %s', key, profile.describe(), err)
        manifest = None
    cache.put(cache_key, manifest)
    return manifest


def slo_headers(headers, raw):
    """What a remote SLO's answer shows without its manifest."""
    headers['X-Static-Large-Object'] = 'True'
    quoted = (raw.get(shunt_headers.SWIFT_ETAG_QUOTED) or '').strip()
    if quoted:
        headers['Etag'] = quoted
    return headers


def dlo_answer(ctx, req, key, headers, raw, size):
    """For a remote DLO: adds ``X-Object-Manifest`` (local form) to
    ``headers`` and returns the answer to ``?multipart-manifest=get``
    (the manifest object itself), else None after making ``req`` what
    Swift's ``dlo`` makes of it. None for any other object."""
    value = remote_dlo_value(raw)
    if value is None:
        return None
    _, segments = _names(ctx.shunt.remote, ctx.profile)
    local = local_dlo_value(value, segments, written_by_daemon(raw))
    headers[MANIFEST_HEADER] = str_to_wsgi(local)
    if slo.wants_manifest(req):
        return dlo_manifest_response(ctx, req, key, local)
    if 'HTTP_IF_MATCH' in req.environ or \
            'HTTP_IF_UNMODIFIED_SINCE' in req.environ:
        manifest_precondition(ctx, req, key, headers)
    if wants_whole_dlo(req):
        del req.headers['Range']
    elif req.range and not req.range.ranges_for_length(size):
        # Swift's dlo answers an unsatisfiable range with its own 416
        return HTTPRequestedRangeNotSatisfiable(request=req, headers={
            'Accept-Ranges': 'bytes',
            'Content-Range': 'bytes */%d' % size})
    return None


def manifest_precondition(ctx, req, key, headers):
    """Swift's proxy first evaluates a DLO request's ``If-Match`` and
    ``If-Unmodified-Since`` against the manifest object itself (its own
    Etag and date); when they fail there, ``dlo`` builds its answer on the
    proxy's 412 headers (its error ``Content-Type``, no
    ``Accept-Ranges``) and then evaluates them against the DLO. One
    remote ``HEAD`` of the manifest object tells."""
    remote, profile = ctx.shunt.remote, ctx.profile
    container, _ = _names(remote, profile)
    resp = remote.request(profile, 'HEAD', container, key,
                          query={'multipart-manifest': 'get'})
    own = shunt_headers.swift_object_headers(swift_shapes.s3_headers(
        resp.headers))
    probe = Response(request=req, conditional_response=True, headers={
        'Etag': own['Etag'], 'Last-Modified': own.get('Last-Modified')})
    if probe._get_conditional_response_status() == 412:
        headers['Content-Type'] = 'text/html; charset=UTF-8'
        headers.pop('Accept-Ranges', None)


def is_unsized_dlo(profile, raw):
    """A remote DLO answered without ``Content-Length`` (Swift's ``dlo``
    does so when its segments fill more than one listing page)."""
    return is_swift(profile) and 'content-length' not in raw and \
        remote_dlo_value(raw) is not None


def unsized_dlo_response(ctx, req, key, headers, raw, stream):
    """Such a DLO as Swift's ``dlo`` answers it: the whole body streamed
    without ``Content-Length`` or ``Etag`` (ranges ignored), or for
    ``?multipart-manifest=get`` the manifest object itself."""
    _, segments = _names(ctx.shunt.remote, ctx.profile)
    local = local_dlo_value(remote_dlo_value(raw), segments,
                            written_by_daemon(raw))
    headers[MANIFEST_HEADER] = str_to_wsgi(local)
    if slo.wants_manifest(req):
        if stream is not None:
            stream.close()
        return dlo_manifest_response(ctx, req, key, local)
    headers = {k: v for k, v in headers.items()
               if k not in ('Etag', 'Accept-Ranges')}
    if req.method == 'HEAD':
        if stream is not None:
            stream.close()
        return Response(request=req, headers=headers, app_iter=[])
    if stream is None or req.range:
        if stream is not None:
            stream.close()
        stream = ctx.get_remote(key)['Body']
    return Response(request=req, headers=headers,
                    app_iter=_streamed(stream))


def _streamed(stream):
    try:
        while chunk := stream.read(READ_SIZE):
            yield chunk
    finally:
        stream.close()


def dlo_manifest_response(ctx, req, key, local_value):
    """The remote DLO manifest object itself (its own body, Etag and
    metadata), as Swift answers ``?multipart-manifest=get`` for a local
    one."""
    return remote_manifest_response(ctx, req, key, {
        MANIFEST_HEADER: str_to_wsgi(local_value)})


def slo_manifest_fallback(ctx, req, key):
    """``?multipart-manifest=get`` of a remote SLO whose manifest the
    shunt could not use (logged): the remote cluster's own answer,
    segment names and all."""
    query = {'multipart-manifest': 'get'}
    if get_param(req, 'format') == 'raw':
        query['format'] = 'raw'
    return remote_manifest_response(ctx, req, key, {
        'X-Static-Large-Object': 'True'}, query)


def remote_manifest_response(ctx, req, key, extra, query=None):
    """The remote cluster's answer to a manifest GET/HEAD (``query``),
    its headers shown as Swift's, plus ``extra``."""
    remote, profile = ctx.shunt.remote, ctx.profile
    container, _ = _names(remote, profile)
    resp = remote.request(profile, req.method, container, key,
                          query=query or {'multipart-manifest': 'get'},
                          stream=req.method == 'GET')
    raw = swift_shapes.s3_headers(resp.headers)
    headers = shunt_headers.swift_object_headers(raw)
    headers.update(extra)
    length = int(raw.get('content-length') or 0)
    if req.method == 'HEAD':
        out = Response(request=req, headers=headers,
                       conditional_response=True)
        out.content_length = length
        return out
    if length <= MAX_DLO_MANIFEST_BODY:
        body = _read_body(resp, MAX_DLO_MANIFEST_BODY)
        return Response(request=req, headers=headers, body=body,
                        conditional_response=True)
    out = Response(request=req, headers=headers, app_iter=resp.body)
    out.content_length = length
    return out


def wants_manifest_delete(req):
    return get_param(req, 'multipart-manifest') == 'delete'


def delete_remote(remote, profile, key, head, req):
    """Delete the remote copy: a remote SLO with the client's
    ``?multipart-manifest=delete`` goes with its segments, as Swift
    deletes a local one for that request; anything else alone."""
    raw = head['ResponseMetadata']['HTTPHeaders'] if head else {}
    if is_remote_slo(raw) and wants_manifest_delete(req):
        container, _ = _names(remote, profile)
        resp = remote.request(profile, 'DELETE', container, key,
                              headers={'Accept': 'application/json'},
                              query={'multipart-manifest': 'delete'})
        failed = bulk_delete_failure(_read_body(resp, 1 << 20))
        if failed:
            raise RemoteError('server', 'the remote SLO delete answered %s'
                              % failed)
        return resp
    return remote.delete_object(profile, key)


def bulk_delete_failure(body):
    """The failure a ``?multipart-manifest=delete`` answer (Swift's bulk
    delete JSON, always a 200) reports, or None when it succeeded (a
    manifest already gone counts as success)."""
    try:
        result = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 'an unreadable answer'
    if not isinstance(result, dict):
        return 'an unreadable answer'
    status = str(result.get('Response Status') or '')
    if status[:3] in ('200', '404') and not result.get('Errors'):
        return None
    return status or 'errors %r' % (result.get('Errors'),)
