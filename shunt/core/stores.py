"""One remote client per process for every kind of remote store.

:class:`Remotes` has the method names of
:class:`shunt.core.remote.S3Remote` and forwards each call to the S3 client
or to the remote Swift client (:class:`shunt.core.swift_remote.SwiftRemote`)
by the profile's ``protocol``, so the proxy and the sync daemon serve both
kinds of profile through the same code. Both clients are built from the same
options (timeouts, pool size, the fail-fast guard) and reused by every
request and green thread.

The S3-only upload calls (``put_object``, multipart uploads) refuse a swift
profile; the Swift-native calls (``request``, ``ensure_container``...)
refuse an S3 one.
"""

from shunt.core.remote import RemoteError


def is_swift(profile):
    return getattr(profile, 'protocol', 's3') == 'swift'


class Remotes:
    """``s3`` (an S3Remote) and ``swift`` (a SwiftRemote) behind one
    interface."""

    def __init__(self, s3, swift):
        self.s3 = s3
        self.swift = swift

    @classmethod
    def build(cls, connect_timeout=2.0, read_timeout=10.0,
              max_pool_connections=100, fail_fast=None, logger=None,
              **s3_options):
        """Both clients from one set of options (``s3_options`` are
        S3Remote's own: ``region``, ``max_attempts``,
        ``payload_signing``). The fail-fast guard is shared: its state is
        per endpoint and credentials anyway."""
        from shunt.core.remote import S3Remote
        from shunt.core.swift_remote import SwiftRemote
        common = dict(connect_timeout=connect_timeout,
                      read_timeout=read_timeout,
                      max_pool_connections=max_pool_connections,
                      fail_fast=fail_fast, logger=logger)
        return cls(S3Remote(**common, **s3_options), SwiftRemote(**common))

    def remote_for(self, profile):
        return self.swift if is_swift(profile) else self.s3

    @property
    def fail_fast(self):
        return self.s3.fail_fast

    def warm(self, profiles):
        profiles = list(profiles)
        self.s3.warm([p for p in profiles if not is_swift(p)])
        self.swift.warm([p for p in profiles if is_swift(p)])

    def client(self, profile):
        """The boto3 client of an S3 profile."""
        return self.s3.client(profile)

    def close(self):
        self.swift.close()

    # -- every protocol ---------------------------------------------------

    def head_object(self, profile, key):
        return self.remote_for(profile).head_object(profile, key)

    def get_object(self, profile, key, byte_range=None):
        return self.remote_for(profile).get_object(profile, key, byte_range)

    def list_objects(self, profile, prefix, marker='', delimiter='',
                     max_keys=1000, **swift_only):
        """``swift_only``: ``end_marker``, ``reverse`` (a remote Swift
        lists with them itself)."""
        return self.remote_for(profile).list_objects(
            profile, prefix, marker, delimiter, max_keys, **swift_only)

    def delete_object(self, profile, key):
        return self.remote_for(profile).delete_object(profile, key)

    def copy_in_place(self, profile, key, head, metadata, content_type,
                      extra=None):
        return self.remote_for(profile).copy_in_place(
            profile, key, head, metadata, content_type, extra)

    def restore_archived(self, profile, key, days, tier):
        return self.remote_for(profile).restore_archived(profile, key, days,
                                                         tier)

    # -- S3 only (the sync daemon's uploads) ------------------------------

    def _s3(self, profile, call):
        if is_swift(profile):
            raise RemoteError('client', '%s is an S3 call; %s is a swift '
                              'profile' % (call, profile.describe()))
        return self.s3

    def put_object(self, profile, key, body, **params):
        return self._s3(profile, 'put_object').put_object(
            profile, key, body, **params)

    def create_multipart_upload(self, profile, key, **params):
        return self._s3(profile, 'create_multipart_upload') \
            .create_multipart_upload(profile, key, **params)

    def upload_part(self, profile, key, upload_id, number, body, **params):
        return self._s3(profile, 'upload_part').upload_part(
            profile, key, upload_id, number, body, **params)

    def complete_multipart_upload(self, profile, key, upload_id, etags):
        return self._s3(profile, 'complete_multipart_upload') \
            .complete_multipart_upload(profile, key, upload_id, etags)

    def abort_multipart_upload(self, profile, key, upload_id):
        return self._s3(profile, 'abort_multipart_upload') \
            .abort_multipart_upload(profile, key, upload_id)

    def list_multipart_uploads(self, profile, prefix):
        return self._s3(profile, 'list_multipart_uploads') \
            .list_multipart_uploads(profile, prefix)

    # -- Swift only (the sync daemon, native large objects) ---------------

    def _swift(self, profile, call):
        if not is_swift(profile):
            raise RemoteError('client', '%s is a Swift call; %s is an S3 '
                              'profile' % (call, profile.describe()))
        return self.swift

    def request(self, profile, method, container, obj=None, headers=None,
                query=None, body=None, stream=False):
        return self._swift(profile, 'request').request(
            profile, method, container, obj, headers=headers, query=query,
            body=body, stream=stream)

    def ensure_container(self, profile, container):
        return self._swift(profile, 'ensure_container').ensure_container(
            profile, container)

    def forget_container(self, profile, container):
        return self._swift(profile, 'forget_container').forget_container(
            profile, container)

    @staticmethod
    def remote_container(profile):
        from shunt.core.swift_remote import remote_container
        return remote_container(profile)

    @staticmethod
    def segments_container(profile):
        from shunt.core.swift_remote import segments_container
        return segments_container(profile)
