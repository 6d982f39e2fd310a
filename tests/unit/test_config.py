import json
import os

import pytest

from shunt.core.config import ConfigError, MappingSource, load_mappings
from tests.unit.helpers import FakeLogger, write_mapping


def profile(**kw):
    base = {'account': 'AUTH_a', 'container': 'c', 'aws_bucket': 'bucket',
            'aws_identity': 'id', 'aws_secret': 's3cr3t',
            'merge_namespaces': True}
    base.update(kw)
    return base


SWIFT = {'protocol': 'swift',
         'aws_endpoint': 'http://swift2.example.com:8080/auth/v1.0'}


def test_loads_only_merge_namespaces_profiles(tmp_path):
    path = write_mapping(tmp_path / 'm.json', [
        profile(), profile(container='d', merge_namespaces=False),
        profile(container='e', merge_namespaces='false'),
        profile(container='f', merge_namespaces='true'),
        profile(container='g', merge_namespaces=None)])
    mappings = load_mappings(path)
    assert sorted(p.container for p in mappings) == ['c', 'f']
    assert [s[2] for s in mappings.skipped] == ['d', 'e', 'g']


def test_other_1space_keys_are_ignored(tmp_path):
    path = write_mapping(tmp_path / 'm.json', [profile(
        copy_after=3600, retain_local=False, propagate_delete=False,
        selection_criteria={'AND': []}, restore_object=True)])
    (p,) = load_mappings(path)
    assert p.restore_object is True and p.protocol == 's3'
    assert 'aws_secret' not in p.extra and p.extra['copy_after'] == 3600
    assert 's3cr3t' not in repr(p) and 's3cr3t' not in p.describe()


@pytest.mark.parametrize('bad,field,words', [
    ({'account': None}, 'account', 'required'),
    ({'account': ''}, 'account', 'empty'),
    ({'aws_bucket': 3}, 'aws_bucket', 'string'),
    ({'aws_secret': None}, 'aws_secret', 'required'),
    ({'container': 'a/b'}, 'container', '/*'),
    ({'protocol': 'swift'}, 'aws_endpoint', 'required'),
    ({'protocol': 'swift', 'aws_endpoint': 'x'}, 'aws_endpoint', 'URL'),
    (dict(SWIFT, custom_prefix=''), 'custom_prefix', 'not used'),
    (dict(SWIFT, auth_type='keystone'), 'auth_type', 'one of'),
    (dict(SWIFT, auth_type='keystone_v3', project_name='p',
          user_domain_name='d'), 'project_domain_name', 'keystone_v3'),
    (dict(SWIFT, auth_type='keystone_v3', project_name='p',
          project_domain_name='d'), 'user_domain_name', 'required'),
    (dict(SWIFT, auth_type='keystone_v3', user_domain_name='d',
          project_domain_name='d'), 'project_name', 'required'),
    (dict(SWIFT, auth_type='keystone_v2'), 'tenant_name', 'keystone_v2'),
    (dict(SWIFT, remote_account='AUTH_a/b'), 'remote_account', '"/"'),
    (dict(SWIFT, storage_policy=3), 'storage_policy', 'string'),
    (dict(SWIFT, aws_bucket='a/b'), 'aws_bucket', '"/"'),
    ({'protocol': 'ftp'}, 'protocol', 'unknown'),
    ({'restore_object': 'maybe'}, 'restore_object', 'true or false'),
    ({'merge_namespaces': 1}, 'merge_namespaces', 'true or false'),
    ({'aws_endpoint': 'ftp://x'}, 'aws_endpoint', 'URL'),
    ({'signature_version': 'v5'}, 'signature_version', 'one of'),
])
def test_bad_profile_names_file_index_and_field(tmp_path, bad, field,
                                                words):
    path = write_mapping(tmp_path / 'm.json', [profile(container='ok'),
                                               profile(**bad)])
    with pytest.raises(ConfigError) as exc:
        load_mappings(path)
    msg = str(exc.value)
    assert msg.startswith(f'{path}: containers[1].{field}: ')
    assert words in msg
    assert 's3cr3t' not in msg


@pytest.mark.parametrize('text,words', [
    ('{not json', 'not valid JSON'), ('[]', 'JSON object'),
    ('{"containers": {}}', 'must be a list'),
    ('{"containers": [3]}', 'containers[0]: expected an object'),
])
def test_bad_file(tmp_path, text, words):
    path = tmp_path / 'm.json'
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_mappings(str(path))
    assert str(path) in str(exc.value) and words in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_mappings(str(tmp_path / 'nope.json'))
    assert 'nope.json: cannot read' in str(exc.value)


def test_duplicate_mapping_is_an_error(tmp_path):
    path = write_mapping(tmp_path / 'm.json', [profile(), profile()])
    with pytest.raises(ConfigError, match=r'containers\[1\].*containers\[0'):
        load_mappings(path)


def test_exact_container_wins_over_star(tmp_path):
    path = write_mapping(tmp_path / 'm.json', [
        profile(container='/*', aws_bucket='star'),
        profile(container='c', aws_bucket='exact')])
    mappings = load_mappings(path)
    assert mappings.lookup('AUTH_a', 'c').aws_bucket == 'exact'
    other = mappings.lookup('AUTH_a', 'other')
    assert other.aws_bucket == 'star' and other.container == 'other'
    assert mappings.lookup('AUTH_b', 'c') is None


def test_reload_keeps_last_good_and_logs(tmp_path):
    now = [0.0]
    logger = FakeLogger()
    path = write_mapping(tmp_path / 'm.json', [profile()])
    source = MappingSource(path, 15, logger, clock=lambda: now[0])
    assert len(source.current()) == 1
    # changed within the interval: not seen yet
    write_mapping(path, [profile(), profile(container='d')])
    os.utime(path, ns=(1, 1))
    now[0] = 10
    assert len(source.current()) == 1
    now[0] = 16
    assert len(source.current()) == 2
    # a broken file: ERROR logged once, previous mappings kept
    with open(path, 'w') as fp:
        fp.write('{"containers": [{"account": 1')
    now[0] = 40
    assert len(source.current()) == 2
    now[0] = 60
    assert len(source.current()) == 2
    errors = [line for lvl, line in logger.lines if lvl == 'error']
    assert len(errors) == 1 and 'not valid JSON' in errors[0]
    # removing the file keeps the mappings too
    os.unlink(path)
    now[0] = 80
    assert len(source.current()) == 2
    assert 'cannot read' in logger.text('error')
    # a fixed file is picked up
    with open(path, 'w') as fp:
        json.dump({'containers': []}, fp)
    now[0] = 100
    assert len(source.current()) == 0


@pytest.mark.parametrize('value,expected', [
    (None, None), (0, None), (3600, 3600), ('60', 60)])
def test_restore_ttl(tmp_path, value, expected):
    raw = profile(restore_object=True)
    if value is not None:
        raw['restore_ttl'] = value
    (p,) = load_mappings(write_mapping(tmp_path / 'm.json', [raw]))
    assert p.restore_ttl == expected


@pytest.mark.parametrize('value', [-1, 1.5, 'soon', True, [60]])
def test_bad_restore_ttl(tmp_path, value):
    path = write_mapping(tmp_path / 'm.json', [profile(restore_ttl=value)])
    with pytest.raises(ConfigError) as exc:
        load_mappings(path)
    assert 'containers[0].restore_ttl: expected a whole number' in \
        str(exc.value)


@pytest.mark.parametrize('field', ['account', 'container', 'aws_bucket',
                                   'custom_prefix', 'aws_endpoint'])
def test_lone_surrogate_escape_is_refused(tmp_path, field):
    path = str(tmp_path / 'm.json')
    with open(path, 'w') as fp:
        value = 'http://x\\udcff' if field == 'aws_endpoint' else 'x\\ud800'
        fp.write(json.dumps({'containers': [profile()]}).replace(
            '"merge_namespaces"', f'"{field}": "{value}", '
                                  f'"merge_namespaces"'))
    with pytest.raises(ConfigError) as exc:
        load_mappings(path)
    assert str(exc.value) == (f'{path}: containers[0].{field}: not valid '
                              f'UTF-8 (a lone surrogate escape)')


def test_deeply_nested_json_is_a_config_error(tmp_path):
    path = str(tmp_path / 'm.json')
    with open(path, 'w') as fp:
        fp.write('{"containers": [%s%s]}' % ('[' * 100000, ']' * 100000))
    with pytest.raises(ConfigError) as exc:
        load_mappings(path)
    assert str(exc.value) == f'{path}: not valid JSON: nested too deeply'
    # and a reload of such a file keeps the mappings in force
    logger = FakeLogger()
    now = [0]
    good = write_mapping(tmp_path / 'good.json', [profile()])
    source = MappingSource(good, 1, logger, clock=lambda: now[0])
    os.replace(path, good)
    now[0] = 10
    assert len(source.current()) == 1
    assert 'nested too deeply' in logger.text('error')


def test_swift_profile(tmp_path):
    path = write_mapping(tmp_path / 'm.json', [
        profile(**SWIFT),
        profile(container='/*', aws_bucket='arch-', auth_type='keystone_v3',
                project_name='p', project_domain_name='Default',
                user_domain_name='Default', remote_account='AUTH_other',
                storage_policy='cold', **dict(
                    SWIFT, aws_endpoint='https://u:pw@ks.example.com/v3/')),
        profile(container='v2', auth_type='keystone_v2', tenant_name='t',
                **SWIFT)])
    plain, every, v2 = sorted(load_mappings(path), key=lambda p: p.index)
    assert plain.protocol == 'swift' and plain.auth_type == 'swift'
    # no hashed prefix: layout.object_key(...) is the object name
    assert plain.custom_prefix == ''
    assert plain.aws_endpoint == SWIFT['aws_endpoint']
    assert plain.remote_account is None and plain.storage_policy is None
    assert (every.auth_type, every.project_name, every.project_domain_name,
            every.user_domain_name, every.remote_account,
            every.storage_policy) == ('keystone_v3', 'p', 'Default',
                                      'Default', 'AUTH_other', 'cold')
    assert every.aws_endpoint == 'https://u:pw@ks.example.com/v3'
    assert (v2.auth_type, v2.tenant_name) == ('keystone_v2', 't')
    for p in (plain, every, v2):
        assert 's3cr3t' not in repr(p) and 's3cr3t' not in p.describe()
    assert every.describe() == ('profile #1 (AUTH_a//* -> '
                                'https://ks.example.com/v3 container arch-)')
    assert 'pw' not in every.describe()


def test_s3_profile_keeps_its_custom_prefix_and_ignores_swift_keys(
        tmp_path):
    path = write_mapping(tmp_path / 'm.json', [
        profile(custom_prefix='pre', auth_type='nonsense')])
    (p,) = load_mappings(path)
    assert p.custom_prefix == 'pre' and p.auth_type == 'swift'
    (p,) = load_mappings(write_mapping(tmp_path / 'n.json', [profile()]))
    assert p.custom_prefix is None
