"""The all-in-one cluster's S3 backends, and the differences between them
the README's compatibility section lists (the shunt copes with both)."""

import time

import botocore.exceptions
import pytest
from swiftclient import client as swiftclient

from shunt.tools.aio import S3_BACKENDS, Cluster


def test_unknown_backend_is_refused():
    assert S3_BACKENDS == ('moto', 's3api')
    with pytest.raises(ValueError, match='s3_backend'):
        Cluster(s3_backend='minio')


@pytest.mark.s3_backends('s3api', reason='moto keeps buckets in memory')
def test_s3api_buckets_are_containers_of_the_store_account(aio, s3,
                                                           unique_name):
    key = unique_name('k')
    s3.put_object(Bucket=aio.bucket, Key=key, Body=b'in swift')
    # the store's tempauth user is the S3 key and secret
    url, token = swiftclient.get_auth(aio.s3_endpoint + '/auth/v1.0',
                                      aio.s3_key, aio.s3_secret)
    assert url.endswith('/AUTH_store')
    _, containers = swiftclient.get_account(url, token)
    assert aio.bucket in [c['name'] for c in containers]
    _, body = swiftclient.get_object(url, token, aio.bucket, key)
    assert body == b'in swift'
    # and survive a restart of the endpoint
    aio.stop_s3()
    aio.start_s3()
    got = aio.s3_client().get_object(Bucket=aio.bucket, Key=key)
    assert got['Body'].read() == b'in swift'


def test_credentials(aio, unique_name):
    """moto accepts any secret; s3api checks it."""
    import boto3
    from botocore.config import Config
    wrong = boto3.session.Session().client(
        's3', endpoint_url=aio.s3_endpoint, aws_access_key_id=aio.s3_key,
        aws_secret_access_key='not-' + aio.s3_secret,
        region_name=aio.s3_region,
        config=Config(signature_version='s3v4',
                      s3={'addressing_style': 'path'},
                      retries={'max_attempts': 1}))
    key = unique_name('cred')
    aio.s3_client().put_object(Bucket=aio.bucket, Key=key, Body=b'x')
    if aio.s3_backend == 'moto':
        assert wrong.get_object(Bucket=aio.bucket, Key=key)['Body'].read() \
            == b'x'
        return
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        wrong.get_object(Bucket=aio.bucket, Key=key)
    assert caught.value.response['Error']['Code'] == 'SignatureDoesNotMatch'


def test_last_modified_precision(aio, s3, unique_name):
    """Whole seconds on both: moto truncates, s3api rounds up (the reason
    deletes decide by content near the archiving time)."""
    for _ in range(3):
        key = unique_name('lm')
        before = time.time()
        s3.put_object(Bucket=aio.bucket, Key=key, Body=b'x')
        after = time.time()
        modified = s3.head_object(Bucket=aio.bucket,
                                  Key=key)['LastModified'].timestamp()
        assert modified == int(modified)
        if aio.s3_backend == 'moto':
            assert before - 1 < modified <= after
        else:
            assert before <= modified < after + 1
        time.sleep(0.3)
