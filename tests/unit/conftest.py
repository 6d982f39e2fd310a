"""Fixtures shared by the unit tests."""

import boto3
import pytest
from moto import mock_aws

from tests.unit.helpers import BUCKET


@pytest.fixture
def s3():
    """moto's in-process S3 with the bucket ``BUCKET``."""
    with mock_aws():
        client = boto3.client('s3', region_name='us-east-1')
        client.create_bucket(Bucket=BUCKET)
        yield client
