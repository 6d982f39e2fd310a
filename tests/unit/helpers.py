"""Small fakes shared by the unit tests."""

import json

from swift.common.swob import Request, Response

from shunt.core.layout import manifest_key, object_key

BUCKET = 'archive-bucket'


class FakeSwift:
    """A WSGI app standing in for the pipeline right of the shunt: answers
    from a dict of ``path -> Response`` and 404 for everything else."""

    def __init__(self, responses=None):
        self.responses = responses or {}
        self.calls = []

    def __call__(self, env, start_response):
        req = Request(env)
        self.calls.append((req.method, req.path, req.query_string,
                           dict(req.headers)))
        resp = self.responses.get(req.path)
        if resp is None:
            resp = Response(status=404, body=b'<html><h1>Not Found</h1>'
                            b'</html>', headers={'X-Local': 'yes'})
        elif not isinstance(resp, Response):
            resp = resp(req)
        return resp(env, start_response)


class FakeLogger:
    """Records log lines and metric calls."""

    def __init__(self):
        self.lines = []
        self.metrics = []

    def _log(self, level, msg, *args):
        self.lines.append((level, msg % args if args else msg))

    def debug(self, msg, *args):
        self._log('debug', msg, *args)

    def info(self, msg, *args):
        self._log('info', msg, *args)

    def warning(self, msg, *args):
        self._log('warning', msg, *args)

    def error(self, msg, *args):
        self._log('error', msg, *args)

    def exception(self, msg, *args):
        self._log('error', msg, *args)

    def increment(self, name, *args, **kwargs):
        self.metrics.append(('increment', name))

    def update_stats(self, name, value, *args, **kwargs):
        self.metrics.append(('update_stats', name, value))

    def timing_since(self, name, start, *args, **kwargs):
        self.metrics.append(('timing', name))

    def text(self, level=None):
        return '\n'.join(line for lvl, line in self.lines
                         if level is None or lvl == level)


def write_mapping(path, profiles):
    with open(path, 'w') as fp:
        json.dump({'containers': profiles}, fp)
    return str(path)


def archive_mpu(client, name, parts, marked=True, sidecar_body=None):
    """A multipart object of ``parts`` in AUTH_a/c (marked as an SLO
    unless ``marked`` is false), with ``sidecar_body`` as its manifest
    sidecar if given."""
    key = object_key('AUTH_a', 'c', name)
    meta = {'color': 'blue'}
    if marked:
        meta['x-static-large-object'] = 'True'
    upload = client.create_multipart_upload(
        Bucket=BUCKET, Key=key, ContentType='video/x-test', Metadata=meta)
    done = []
    for number, data in enumerate(parts, 1):
        resp = client.upload_part(Bucket=BUCKET, Key=key, PartNumber=number,
                                  UploadId=upload['UploadId'], Body=data)
        done.append({'PartNumber': number, 'ETag': resp['ETag']})
    client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload['UploadId'],
        MultipartUpload={'Parts': done})
    if sidecar_body is not None:
        client.put_object(Bucket=BUCKET,
                          Key=manifest_key('AUTH_a', 'c', name),
                          Body=sidecar_body)
