"""The remote store client: S3 through boto3, one client per destination.

A boto3 client is built once per distinct (endpoint, credentials, region,
signature version, addressing style) and shared by every request and green
thread of the proxy worker; botocore's client and its urllib3 pool are safe
to share. Under the proxy's eventlet monkey-patching their sockets are green,
so a slow bucket stalls only the requests that wait for it.

Every failure is turned into a :class:`RemoteError` with a ``kind`` the
middleware maps to a Swift answer (``not_found`` is the only kind that may
become a 404).
"""

import datetime
import urllib.parse

import boto3
import botocore.exceptions
import botocore.session
import botocore.utils
from botocore.config import Config
from swift.common.swob import HTTPServiceUnavailable

from shunt.core.guard import FailFast

AWS_LABEL = 'AWS S3'
DEFAULT_AWS_URL = 'https://s3.amazonaws.com'


class RemoteError(Exception):
    """A remote call failed.

    ``kind`` is one of ``not_found``, ``hidden`` (archived but deleted,
    expired or a cached miss: a 404 that is not cached), ``range`` (416),
    ``archived`` (the object is in an archive storage class), ``restoring``
    (and an S3 restore of it runs), ``auth``, ``throttled``, ``timeout``,
    ``connection``, ``server`` (5xx), ``unavailable`` (not tried: the
    endpoint failed repeatedly just before) or ``client`` (any other
    refusal).
    """

    def __init__(self, kind, message, status=None, code=None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.code = code

    @property
    def is_outage(self):
        return self.kind not in ('not_found', 'hidden', 'range')


# what a client is told about each kind of failure
REASONS = {
    'timeout': 'the remote store timed out',
    'connection': 'the remote store cannot be reached',
    'throttled': 'the remote store is throttling requests',
    'auth': 'the remote store refused the credentials',
    'server': 'the remote store failed',
    'not_found': 'the bucket does not exist',
    'archived': 'the object is in an archive storage class and must be '
                'restored before it can be read',
    'restoring': 'the object is in an archive storage class and is being '
                 'restored; try again later',
    'unavailable': 'recent calls to the remote store failed',
}
# failures worth retrying later, and how many seconds later
RETRY_KINDS = frozenset(('throttled', 'archived', 'restoring', 'unavailable'))
RETRY_AFTER = 5


def unavailable_response(req, err, what):
    """The ``503`` for a failed remote call: one plain-text line naming
    ``what`` could not be served and why (never the remote's own error
    text), with ``Retry-After`` where waiting helps."""
    resp = HTTPServiceUnavailable(
        request=req, content_type='text/plain',
        body='%s unavailable: %s.\n' % (what, REASONS.get(
            err.kind, 'the remote store refused the request')))
    if err.kind in RETRY_KINDS:
        resp.headers['Retry-After'] = str(RETRY_AFTER)
    return resp


AUTH_CODES = frozenset((
    'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch',
    'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired',
    'AuthorizationHeaderMalformed', 'InvalidSecurity', 'AllAccessDisabled',
    'AccountProblem'))
THROTTLE_CODES = frozenset((
    'SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded',
    'TooManyRequests', 'RequestThrottled', 'ServiceUnavailable'))
NOT_FOUND_CODES = frozenset(('NoSuchKey', 'NotFound', '404'))


def classify(err):
    """Map a botocore exception to a :class:`RemoteError`."""
    if isinstance(err, botocore.exceptions.ClientError):
        meta = err.response.get('ResponseMetadata', {})
        status = meta.get('HTTPStatusCode')
        error = err.response.get('Error', {})
        code = str(error.get('Code') or status)
        message = error.get('Message') or code
        if code in NOT_FOUND_CODES:
            return RemoteError('not_found', message, status, code)
        if code == 'InvalidObjectState':
            return RemoteError('archived', message, status, code)
        if code in ('InvalidRange', '416') or status == 416:
            return RemoteError('range', message, status, code)
        if code in THROTTLE_CODES or status in (429, 503):
            return RemoteError('throttled', message, status, code)
        if code in AUTH_CODES or status in (401, 403):
            return RemoteError('auth', message, status, code)
        if status and status >= 500:
            return RemoteError('server', message, status, code)
        return RemoteError('client', message, status, code)
    if isinstance(err, (botocore.exceptions.ConnectTimeoutError,
                        botocore.exceptions.ReadTimeoutError)):
        return RemoteError('timeout', str(err))
    return RemoteError('connection', str(err) or type(err).__name__)


def is_amazon(endpoint):
    if not endpoint:
        return True
    host = urllib.parse.urlsplit(endpoint).hostname or ''
    return host == 'amazonaws.com' or host.endswith('.amazonaws.com')


def location_label(profile):
    """The remote store's name as listings show it (``AWS S3`` or the
    endpoint URL, without any user info)."""
    if not profile.aws_endpoint:
        return AWS_LABEL
    return public_endpoint(profile.aws_endpoint)


def public_endpoint(endpoint):
    parts = urllib.parse.urlsplit(endpoint)
    netloc = parts.netloc.rsplit('@', 1)[-1]
    return urllib.parse.urlunsplit(
        (parts.scheme, netloc, parts.path, '', '')).rstrip('/')


def object_url(profile, key):
    """Where an object lives, as a URL with no credentials (for the
    ``Content-Location`` header)."""
    base = public_endpoint(profile.aws_endpoint) if profile.aws_endpoint \
        else DEFAULT_AWS_URL
    return '%s/%s/%s' % (base, urllib.parse.quote(profile.aws_bucket),
                         urllib.parse.quote(key))


def parse_timestamp(value):
    """botocore's timestamp parser, but the ISO 8601 times of listings
    (``2026-12-01T10:00:00.000Z``) are read by the standard library:
    dateutil, botocore's, takes a quarter of a millisecond a key, the
    larger part of reading a listing page."""
    if isinstance(value, str) and value.endswith('Z') and 'T' in value:
        try:
            return datetime.datetime.fromisoformat(
                value[:-1] + '+00:00')
        except ValueError:
            pass
    return botocore.utils.parse_timestamp(value)


class S3Remote:
    """Remote calls for S3 profiles, through cached boto3 clients."""

    def __init__(self, region='us-east-1', connect_timeout=2.0,
                 read_timeout=10.0, max_pool_connections=100,
                 max_attempts=2, fail_fast=None, logger=None,
                 payload_signing=None):
        self.fail_fast = fail_fast or FailFast(0, 0)
        # None: botocore's choice (SigV4 over http hashes every body before
        # sending it, which reads a streamed upload twice); False: send
        # UNSIGNED-PAYLOAD, as the sync daemon does (its uploads carry
        # Content-MD5, which the store checks)
        self.payload_signing = payload_signing
        self.logger = logger
        self.region = region
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_pool_connections = max_pool_connections
        self.max_attempts = max_attempts
        self._clients = {}

    @staticmethod
    def client_key(profile):
        return (profile.aws_endpoint, profile.aws_identity,
                profile.aws_secret, profile.aws_session_token,
                profile.aws_region, profile.signature_version,
                profile.addressing_style)

    def client(self, profile):
        key = self.client_key(profile)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._build(profile)
        return client

    def warm(self, profiles):
        """Build the clients of these profiles now, not on a request."""
        for profile in profiles:
            self.client(profile)

    def _build(self, profile):
        addressing = profile.addressing_style or 'auto'
        if addressing == 'auto' and not is_amazon(profile.aws_endpoint):
            addressing = 'path'
        config = Config(
            region_name=profile.aws_region or self.region,
            signature_version=profile.signature_version or 's3v4',
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=self.max_pool_connections,
            retries={'mode': 'standard',
                     'total_max_attempts': self.max_attempts},
            s3=dict({'addressing_style': addressing}, **(
                {} if self.payload_signing is None else
                {'payload_signing_enabled': self.payload_signing})),
            # S3 clones rarely support the newer flexible checksums, and a
            # checksum over a whole streamed body costs proxy CPU
            request_checksum_calculation='when_required',
            response_checksum_validation='when_required',
            user_agent_extra='swift-cloud-shunt',
        )
        core = botocore.session.get_session()
        core.get_component('response_parser_factory').set_parser_defaults(
            timestamp_parser=parse_timestamp)
        session = boto3.session.Session(
            aws_access_key_id=profile.aws_identity,
            aws_secret_access_key=profile.aws_secret,
            aws_session_token=profile.aws_session_token,
            botocore_session=core)
        return session.client('s3', endpoint_url=profile.aws_endpoint or None,
                              config=config)

    def _call(self, profile, operation, **kwargs):
        endpoint = self.client_key(profile)
        if not self.fail_fast.allows(endpoint):
            if self.logger:
                self.logger.increment('fail_fast.rejected')
            raise RemoteError('unavailable', 'recent calls to the remote '
                              'store failed; not trying again yet')
        method = getattr(self.client(profile), operation)
        try:
            result = method(Bucket=profile.aws_bucket, **kwargs)
        except (botocore.exceptions.BotoCoreError,
                botocore.exceptions.ClientError) as err:
            error = classify(err)
            if self.fail_fast.record(endpoint, error.kind) and self.logger:
                self.logger.increment('fail_fast.open')
                self.logger.error(
                    'Remote store %s failing: refusing calls for %ss',
                    location_label(profile), self.fail_fast.period)
            raise error from None
        self.fail_fast.record(endpoint)
        return result

    def head_object(self, profile, key):
        return self._call(profile, 'head_object', Key=key)

    def get_object(self, profile, key, byte_range=None):
        """GET an object (or one byte range of it, ``bytes=…``); the
        response's ``Body`` is a stream the caller must close."""
        kwargs = {'Key': key}
        if byte_range:
            kwargs['Range'] = byte_range
        return self._call(profile, 'get_object', **kwargs)

    def restore_archived(self, profile, key, days, tier):
        """Start the restore of an object in an archive storage class."""
        return self._call(profile, 'restore_object', Key=key, RestoreRequest={
            'Days': days, 'GlacierJobParameters': {'Tier': tier}})

    def delete_object(self, profile, key):
        return self._call(profile, 'delete_object', Key=key)

    # -- writes (the sync daemon) -------------------------------------------

    def put_object(self, profile, key, body, **params):
        """``PutObject``: ``body`` is bytes or a file-like object read in
        chunks (pass ``ContentLength`` and ``ContentMD5`` with a stream)."""
        return self._call(profile, 'put_object', Key=key, Body=body,
                          **params)

    def create_multipart_upload(self, profile, key, **params):
        """Start a multipart upload; returns its ``UploadId``."""
        return self._call(profile, 'create_multipart_upload', Key=key,
                          **params)['UploadId']

    def upload_part(self, profile, key, upload_id, number, body, **params):
        """Upload part ``number`` (1-based); returns its quoted ``ETag``."""
        return self._call(profile, 'upload_part', Key=key,
                          UploadId=upload_id, PartNumber=number, Body=body,
                          **params)['ETag']

    def complete_multipart_upload(self, profile, key, upload_id, etags):
        """Complete an upload of the parts whose ETags are ``etags``
        (in part order)."""
        parts = [{'PartNumber': number, 'ETag': etag}
                 for number, etag in enumerate(etags, 1)]
        return self._call(profile, 'complete_multipart_upload', Key=key,
                          UploadId=upload_id,
                          MultipartUpload={'Parts': parts})

    def abort_multipart_upload(self, profile, key, upload_id):
        """Abort an upload; one that is already gone is not an error."""
        try:
            return self._call(profile, 'abort_multipart_upload', Key=key,
                              UploadId=upload_id)
        except RemoteError as err:
            if err.code != 'NoSuchUpload':
                raise

    def list_multipart_uploads(self, profile, prefix):
        """Every open multipart upload whose key starts with ``prefix``:
        ``[{'Key', 'UploadId', 'Initiated'}, ...]`` (all pages)."""
        uploads, kwargs = [], {'Prefix': prefix}
        while True:
            page = self._call(profile, 'list_multipart_uploads', **kwargs)
            uploads.extend(page.get('Uploads', []))
            if not page.get('IsTruncated'):
                return uploads
            kwargs['KeyMarker'] = page.get('NextKeyMarker', '')
            kwargs['UploadIdMarker'] = page.get('NextUploadIdMarker', '')

    def copy_in_place(self, profile, key, head, metadata, content_type,
                      extra=None):
        """Replace an object's metadata by copying it onto itself.

        The body and Etag stay as they are: a multipart object is copied
        part by part with its own part boundaries (so its ``…-N`` Etag is
        unchanged), anything else with one ``CopyObject``. ``head`` is the
        object's ``HeadObject`` response; ``extra`` holds ``CopyObject``
        parameters such as ``ContentDisposition``.
        """
        params = dict(extra or {}, Metadata=metadata, ContentType=content_type)
        if head.get('StorageClass'):
            params['StorageClass'] = head['StorageClass']
        source = {'Bucket': profile.aws_bucket, 'Key': key}
        etag = head.get('ETag', '').strip('"')
        parts = int(etag.rsplit('-', 1)[1]) if '-' in etag else 0
        if not parts:
            return self._call(profile, 'copy_object', Key=key,
                              CopySource=source, MetadataDirective='REPLACE',
                              **params)
        upload = self._call(profile, 'create_multipart_upload', Key=key,
                            **params)
        upload_id = upload['UploadId']
        try:
            done, start = [], 0
            for number in range(1, parts + 1):
                size = self._call(profile, 'head_object', Key=key,
                                  PartNumber=number)['ContentLength']
                part = self._call(
                    profile, 'upload_part_copy', Key=key, CopySource=source,
                    CopySourceRange='bytes=%d-%d' % (start, start + size - 1),
                    PartNumber=number, UploadId=upload_id)
                done.append({'ETag': part['CopyPartResult']['ETag'],
                             'PartNumber': number})
                start += size
            return self._call(profile, 'complete_multipart_upload', Key=key,
                              UploadId=upload_id,
                              MultipartUpload={'Parts': done})
        except Exception:
            try:
                self._call(profile, 'abort_multipart_upload', Key=key,
                           UploadId=upload_id)
            except RemoteError:
                pass
            raise

    def list_objects(self, profile, prefix, marker='', delimiter='',
                     max_keys=1000):
        kwargs = {'Prefix': prefix, 'MaxKeys': max_keys}
        if marker:
            kwargs['Marker'] = marker
        if delimiter:
            kwargs['Delimiter'] = delimiter
        return self._call(profile, 'list_objects', **kwargs)
