from swift.common.swob import Request, Response

from shunt.core import tombstones
from shunt.proxy.middleware import CloudShuntMiddleware
from tests.unit.helpers import BUCKET, FakeLogger, FakeSwift, write_mapping


def _shunt(tmp_path, app):
    path = write_mapping(tmp_path / 'm.json', [{
        'account': 'AUTH_a', 'container': 'c', 'aws_bucket': BUCKET,
        'aws_identity': 'id', 'aws_secret': 'sekrit',
        'merge_namespaces': True}])
    return CloudShuntMiddleware(app, {'conf_file': path},
                                logger=FakeLogger())


def test_bad_x_timestamp_is_left_to_swift(tmp_path, s3):
    app = FakeSwift({'/v1/AUTH_a/c/o': lambda req: Response(
        status=400, body=b'bad timestamp')})
    shunt = _shunt(tmp_path, app)
    resp = Request.blank('/v1/AUTH_a/c/o', method='DELETE', headers={
        'X-Timestamp': 'garbage'}).get_response(shunt)
    assert resp.status_int == 400
    assert [(c[0], c[3].get('X-Timestamp')) for c in app.calls] == [
        ('DELETE', 'garbage')]


def test_delete_of_local_object_is_marked(tmp_path, s3):
    app = FakeSwift({'/v1/AUTH_a/c/o': lambda req: Response(status=204)})
    shunt = _shunt(tmp_path, app)
    resp = Request.blank('/v1/AUTH_a/c/o', method='DELETE').get_response(
        shunt)
    assert resp.status_int == 204
    deletes = [c for c in app.calls if c[0] == 'DELETE']
    assert tombstones.is_marked(tombstones.parse(
        deletes[0][3]['X-Timestamp']))
