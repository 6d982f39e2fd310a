import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from swift.common.swob import str_to_wsgi, wsgi_to_str

from shunt.core import headers


@pytest.mark.parametrize('raw,value', [
    ('plain value', 'plain value'),
    ('=?UTF-8?B?w6k=?=', '\u00e9'),
    ('=?UTF-8?Q?=04w?=', '\x04w'),
    ('=?UTF-8?Q?h=04?=', 'h\x04'),
    ('=?UTF-8?B?BAQEBAQ=?=', '\x04' * 5),
    ('=?utf-8?q?caf=C3=A9?=', 'caf\u00e9'),
    ('Wed%2C%20April%2030', 'Wed, April 30'),
    ('%F0%9F%91%8D', '\U0001f44d'),
    ('100%', '100%'),                      # not a valid escape: literal
    ('50% off', '50% off'),                # space: not legacy-quoted
    ('%FF%FE', '%FF%FE'),                  # not UTF-8 once unquoted
    ('caf\u00c3\u00a9', 'caf\u00e9'),      # raw UTF-8 bytes from a clone
    ('\u00e9', '\u00e9'),                  # latin-1 byte, not UTF-8
])
def test_decode_meta_value(raw, value):
    assert headers.decode_meta_value(raw) == value


def test_swift_object_headers():
    s3 = {
        'content-type': 'image/jpeg', 'content-length': '10',
        'etag': '"0123456789abcdef0123456789abcdef"',
        'last-modified': 'Thu, 16 Jan 2014 21:12:31 GMT',
        'x-amz-meta-color': '=?UTF-8?B?w6k=?=', 'x-amz-meta-mtime': '12.5',
        'x-amz-meta-x-static-large-object': 'True',
        'x-amz-meta-x-delete-at': '1999999999',
        'content-disposition': 'attachment', 'x-amz-request-id': 'R',
        'x-amz-id-2': 'I', 'server': 'AmazonS3', 'connection': 'close',
    }
    out = headers.swift_object_headers(s3)
    assert out == {
        'Content-Type': 'image/jpeg',
        'Etag': '0123456789abcdef0123456789abcdef',
        'Accept-Ranges': 'bytes',
        'X-Timestamp': '1389906751.00000',
        'Last-Modified': 'Thu, 16 Jan 2014 21:12:31 GMT',
        'Content-Disposition': 'attachment',
        # WSGI string form of the UTF-8 bytes
        'X-Object-Meta-color': '\u00c3\u00a9',
        'X-Object-Meta-mtime': '12.5',
        'X-Delete-At': '1999999999',
    }


@pytest.mark.parametrize('raw,bare', [
    ('"abc"', 'abc'), ('abc', 'abc'), ('W/"abc"', 'abc'),
    ('"abc-3"', 'abc-3'), (None, '')])
def test_bare_etag(raw, bare):
    assert headers.bare_etag(raw) == bare


def test_content_range_total():
    assert headers.content_range_total('bytes 5-9/100') == (100, (5, 10))
    assert headers.content_range_total('bytes */100') == (None, None)
    assert headers.content_range_total(None) == (None, None)


@given(st.binary(min_size=1, max_size=300).filter(
    lambda b: not (b.isascii() and b.decode().isprintable())))
@example(b'\x80')
@example(b'caf\xc3\xa9 \xff')
def test_meta_value_bytes_round_trip(raw):
    """Swift keeps object metadata as the bytes sent, UTF-8 or not: what a
    POST stores in S3 reads back as the same bytes."""
    wsgi = raw.decode('latin-1')
    stored = headers.encode_meta_value(wsgi_to_str(wsgi))
    assert stored.isascii() and stored.isprintable()
    assert str_to_wsgi(headers.decode_meta_value(stored)) == wsgi


def test_s3_metadata_of_bytes_that_are_not_utf8():
    meta = headers.s3_metadata({'X-Object-Meta-Raw': '\x80\xff',
                                'X-Object-Meta-Ok': 'caf\xc3\xa9'})
    assert meta == {'raw': '=?utf-8?b?gP8=?=', 'ok': '=?utf-8?b?Y2Fmw6k=?='}
    out = headers.swift_object_headers(
        {'x-amz-meta-' + k: v for k, v in meta.items()})
    assert out['X-Object-Meta-raw'] == '\x80\xff'
    assert out['X-Object-Meta-ok'] == 'caf\xc3\xa9'


@pytest.mark.parametrize('value,expected', [
    ('1389906750.12345', ('1389906750.12345',
                          'Thu, 16 Jan 2014 21:12:31 GMT')),
    ('1389906750.00000_0000000000000002', ('1389906750.00000',
                                           'Thu, 16 Jan 2014 21:12:30 GMT')),
    # unreadable: the upload's own time
    ('garbage', ('1389906800.00000', 'Thu, 16 Jan 2014 21:13:20 GMT')),
    ('0', ('1389906800.00000', 'Thu, 16 Jan 2014 21:13:20 GMT')),
    ('9' * 40, ('1389906800.00000', 'Thu, 16 Jan 2014 21:13:20 GMT')),
])
def test_swift_timestamp_answers_the_original_version(value, expected):
    """The sync daemon records the archived version's Swift timestamp: it
    is answered as X-Timestamp and Last-Modified (ceil, as the object
    server does), and never shown as user metadata."""
    s3 = {'etag': '"e"', 'last-modified': 'Thu, 16 Jan 2014 21:13:20 GMT',
          'x-amz-meta-swift-timestamp': value}
    out = headers.swift_object_headers(s3)
    assert (out['X-Timestamp'], out['Last-Modified']) == expected
    assert not any(k.lower().endswith('swift-timestamp') for k in out)
    assert headers.bookkeeping_metadata(s3) == {'swift-timestamp': value}


def test_sent_value_is_the_native_string_of_swifts_bytes():
    assert headers.sent_value('inline') == 'inline'
    assert headers.sent_value(str_to_wsgi('r\u00e9sum\u00e9 \u2603')) == \
        'r\u00e9sum\u00e9 \u2603'
    # bytes that are not UTF-8, or a string already native: as they are
    assert headers.sent_value('\xe9t\xe9') == '\xe9t\xe9'
    assert headers.sent_value('\u2603') == '\u2603'


def test_a_post_keeps_a_dlo_only_if_it_names_a_manifest():
    s3 = {'x-amz-meta-x-object-manifest': 'segs/p%C3%A9',
          'x-amz-meta-swift-source-dlo-etag': 'abc',
          'x-amz-meta-swift-timestamp': '1.00000',
          'x-amz-meta-color': 'red'}
    # Swift: a POST without X-Object-Manifest makes a DLO a plain object
    assert headers.posted_metadata(s3, {'X-Object-Meta-Shape': 'round'}) \
        == {'swift-timestamp': '1.00000', 'shape': 'round'}
    # naming one (again) keeps it a DLO, with the value as posted (WSGI
    # string of UTF-8), URL-quoted as the sync daemon stores it
    posted = headers.posted_metadata(s3, {
        'X-Object-Manifest': 'segs/p\xc3\xa9x', 'X-Object-Meta-A': 'b'})
    assert posted == {'swift-timestamp': '1.00000', 'a': 'b',
                      'x-object-manifest': 'segs/p%C3%A9x'}


def test_clients_never_write_bookkeeping_metadata():
    meta = headers.s3_metadata({'X-Object-Meta-Swift-Timestamp': '1',
                                'X-Object-Meta-X-Delete-At': '2',
                                'X-Object-Meta-Color': 'red'})
    assert meta == {'color': 'red'}
