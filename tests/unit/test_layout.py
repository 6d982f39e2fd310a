import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shunt.core import layout


@pytest.mark.parametrize('account,container,prefix', [
    ('AUTH_test', 'photos', '389e7e'),
    ('AUTH_test', 'archive', '2dea4b'),
    ('account', 'container', '356b9d'),
    ('AUTH_test', 'archive-s3', '5dcc3'),  # leading zero dropped
    ('AUTH_test', 's3-restore', '2b77b2'),
    ('AUTH_\u062aacct', '\u062acl-conn-archive', '4a46ac'),
])
def test_hashed_prefix_reference_examples(account, container, prefix):
    assert layout.hashed_prefix(account, container) == prefix


def test_object_key_examples():
    assert layout.object_key('AUTH_test', 'photos', '2019/cat.jpg') == \
        '389e7e/AUTH_test/photos/2019/cat.jpg'
    assert layout.object_key('AUTH_test', 'archive', 'report.pdf') == \
        '2dea4b/AUTH_test/archive/report.pdf'
    assert layout.object_key('AUTH_test', 'archive-s3', 'x') == \
        '5dcc3/AUTH_test/archive-s3/x'
    assert layout.key_prefix('account', 'container') == \
        '356b9d/account/container/'


@pytest.mark.parametrize('custom,key', [
    ('scary', 'scary/k'), ('scary/', 'scary/k'), ('scary/idea/',
                                                  'scary/idea/k'),
    ('', 'k'), ('/', 'k'), ('pre-', 'pre-/k'),
])
def test_custom_prefix(custom, key):
    assert layout.object_key('AUTH_a', 'c', 'k', custom) == key


def test_manifest_keys():
    assert layout.manifest_key('AUTH_test', 'photos', '2019/cat.jpg') == (
        '389e7e/.manifests/AUTH_test/photos/bde728424f42552de30b66c610f8e5'
        '3fa2b5013f4f8a22f4ca47071196250b95.swift_slo_manifest')
    assert layout.manifest_key(
        'AUTH_test', 's3-restore', 'test_swift_archive') == (
        '2b77b2/.manifests/AUTH_test/s3-restore/fb72e56b0ec2746a557f631ec9'
        '48f3fcb10677619c50b4c75e1fe6e6edce9b1d.swift_slo_manifest')
    sha = hashlib.sha256(b'o').hexdigest()
    assert layout.manifest_key('a', 'c', 'o', 'cp/') == \
        f'cp/.manifests/{sha}.swift_slo_manifest'
    assert layout.manifest_key('a', 'c', 'o', '') == \
        f'.manifests/{sha}.swift_slo_manifest'


@given(st.text(min_size=1), st.text(min_size=1))
def test_prefix_is_unpadded_hex_of_md5_tail(account, container):
    p = layout.hashed_prefix(account, container)
    assert 1 <= len(p) <= 6 and (p == '0' or not p.startswith('0'))
    digest = hashlib.md5(f'{account}/{container}'.encode()).hexdigest()
    assert int(p, 16) == int(digest[-6:], 16)
