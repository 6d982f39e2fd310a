"""The sync daemon's profile keys in the mapping file (shunt.core.config)."""

import pytest

from shunt.core.config import ConfigError, load_mappings
from tests.unit.helpers import write_mapping


def profile(**kw):
    base = {'account': 'AUTH_a', 'container': 'c', 'aws_bucket': 'bucket',
            'aws_identity': 'id', 'aws_secret': 's3cr3t'}
    base.update(kw)
    return base


def test_daemon_sees_every_profile_with_1space_defaults(tmp_path):
    path = write_mapping(tmp_path / 'm.json', [
        profile(), profile(container='d', merge_namespaces=True)])
    assert [p.container for p in load_mappings(path)] == ['d']
    plain, merged = load_mappings(path, shunted_only=False)
    assert (plain.container, plain.merge_namespaces) == ('c', False)
    assert merged.merge_namespaces is True
    assert plain.copy_after == 0 and plain.retain_local is True
    assert plain.retain_local_segments is False
    # absent: the shunt reads None as false, the daemon as true
    assert plain.propagate_delete is None
    assert plain.exclude_pattern is None and plain.selection_criteria is None


def test_daemon_keys_parsed(tmp_path):
    criteria = {'OR': [{'x-object-meta-msd': 'boo'},
                       {'NOT': {'x-object-meta-keep': 'yes'}},
                       {'AND': []}]}
    path = write_mapping(tmp_path / 'm.json', [profile(
        copy_after='3600', retain_local='false', retain_local_segments=True,
        propagate_delete=False, exclude_pattern='^tmp/',
        selection_criteria=criteria)])
    (p,) = load_mappings(path, shunted_only=False)
    assert p.copy_after == 3600 and p.retain_local is False
    assert p.retain_local_segments is True and p.propagate_delete is False
    assert p.exclude_pattern.match('tmp/x') and \
        not p.exclude_pattern.match('a/tmp/x')
    assert p.selection_criteria == criteria
    hash(p)  # profiles stay hashable


def test_empty_exclude_pattern_and_criteria_select_everything(tmp_path):
    path = write_mapping(tmp_path / 'm.json', [profile(
        exclude_pattern='', selection_criteria={})])
    (p,) = load_mappings(path, shunted_only=False)
    assert p.exclude_pattern is None and p.selection_criteria is None


@pytest.mark.parametrize('bad,where,words', [
    ({'copy_after': -1}, 'copy_after', 'whole number'),
    ({'copy_after': 'soon'}, 'copy_after', 'whole number'),
    ({'copy_after': True}, 'copy_after', 'whole number'),
    ({'retain_local': 'maybe'}, 'retain_local', 'true or false'),
    ({'retain_local_segments': 2}, 'retain_local_segments', 'true or false'),
    ({'propagate_delete': 'x'}, 'propagate_delete', 'true or false'),
    ({'exclude_pattern': '(['}, 'exclude_pattern', 'regular expression'),
    ({'exclude_pattern': 3}, 'exclude_pattern', 'string'),
    ({'selection_criteria': []}, 'selection_criteria', 'expected an object'),
    ({'selection_criteria': {'a': '1', 'b': '2'}}, 'selection_criteria',
     'exactly one key'),
    ({'selection_criteria': {'AND': {}}}, 'selection_criteria.AND',
     'list of criteria'),
    ({'selection_criteria': {'OR': [{'x': 1}]}},
     'selection_criteria.OR[0].x', 'string value'),
    ({'selection_criteria': {'NOT': {'AND': [3]}}},
     'selection_criteria.NOT.AND[0]', 'expected an object'),
])
def test_bad_daemon_keys_name_file_profile_field(tmp_path, bad, where,
                                                  words):
    path = write_mapping(tmp_path / 'm.json', [profile(**bad)])
    with pytest.raises(ConfigError) as exc:
        load_mappings(path, shunted_only=False)
    msg = str(exc.value)
    assert msg.startswith(f'{path}: containers[0].{where}'), msg
    assert words in msg and 's3cr3t' not in msg


def test_shunt_still_validates_only_its_profiles(tmp_path):
    # a broken daemon key in a profile the shunt does not serve: the shunt
    # loads the file, the daemon refuses it
    path = write_mapping(tmp_path / 'm.json', [
        profile(copy_after='never'), profile(container='d',
                                             merge_namespaces=True)])
    assert [p.container for p in load_mappings(path)] == ['d']
    with pytest.raises(ConfigError):
        load_mappings(path, shunted_only=False)
