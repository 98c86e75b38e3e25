"""Image references are parsed and normalised exactly as the docker CLI does."""

import pytest

from teachdock.errors import InvalidConfig
from teachdock.image.reference import InvalidReference, Reference, is_image_id, parse_reference

HEX = "a" * 64
DIGEST = "sha256:" + HEX


@pytest.mark.parametrize("text, domain, path, tag, digest, full, familiar", [
    ("busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest", "busybox:latest"),
    ("library/busybox:1.36", "docker.io", "library/busybox", "1.36", None,
     "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/library/busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest", "busybox:latest"),
    ("team/app:v1", "docker.io", "team/app", "v1", None, "docker.io/team/app:v1", "team/app:v1"),
    (f"127.0.0.1:5000/team/app@{DIGEST}", "127.0.0.1:5000", "team/app", None, DIGEST,
     f"127.0.0.1:5000/team/app@{DIGEST}", f"127.0.0.1:5000/team/app@{DIGEST}"),
    ("localhost/x", "localhost", "x", "latest", None, "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x:1", "localhost:5000", "x", "1", None, "localhost:5000/x:1", "localhost:5000/x:1"),
    (f"busybox:1.36@{DIGEST}", "docker.io", "library/busybox", "1.36", DIGEST,
     f"docker.io/library/busybox:1.36@{DIGEST}", f"busybox:1.36@{DIGEST}"),
    ("example.com/a/b/c", "example.com", "a/b/c", "latest", None,
     "example.com/a/b/c:latest", "example.com/a/b/c:latest"),
    ("my-registry:5000/a.b_c__d---e:Tag_1.0-x", "my-registry:5000", "a.b_c__d---e", "Tag_1.0-x", None,
     "my-registry:5000/a.b_c__d---e:Tag_1.0-x", "my-registry:5000/a.b_c__d---e:Tag_1.0-x"),
    ("[::1]:5000/x", "[::1]:5000", "x", "latest", None, "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
    # an uppercase first component is taken for a host (Docker does the same)
    ("Registry/x", "Registry", "x", "latest", None, "Registry/x:latest", "Registry/x:latest"),
    # "localhost:5000" alone is the Hub image "localhost" with tag "5000", as in Docker
    ("localhost:5000", "docker.io", "library/localhost", "5000", None,
     "docker.io/library/localhost:5000", "localhost:5000"),
])
def test_valid_references_normalise(text, domain, path, tag, digest, full, familiar):
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == full
    assert ref.familiar == familiar
    # normalising is idempotent: the full form and the short form parse to the same thing
    assert parse_reference(str(ref)) == ref
    assert parse_reference(ref.familiar) == ref


def test_default_tag_can_be_left_out():
    assert parse_reference("busybox", default_tag=None) == Reference("docker.io", "library/busybox")
    assert parse_reference(f"busybox@{DIGEST}").tag is None


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("Busybox", "must be lowercase"),
    ("library/BusyBox:1", "must be lowercase"),
    ("busybox:", "empty tag"),
    ("busybox:-x", "tag"),
    ("busybox:a/b", "registry host"),
    ("busybox:bad!tag", "tag"),
    ("busybox:" + "t" * 129, "maximum is 128"),
    ("busybox@sha256:abc", "64 lowercase hex"),
    ("busybox@sha256:" + "A" * 64, "64 lowercase hex"),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("busybox@" + HEX, "algorithm"),
    ("busy box", "whitespace"),
    (" busybox", "whitespace"),
    ("busybox\n", "whitespace"),
    ("a/../b", "'..' is not allowed"),
    ("busybox/", "must not end with '/'"),
    ("/busybox", "must not start with '/'"),
    ("a//b", "empty path component"),
    ("-busybox", "may contain only"),
    ("busy_-box", "may contain only"),
    ("bad_host!:5000/x", "registry host"),
    (HEX, "64-byte hexadecimal"),
    ("a" * 250 + "/" + "b" * 10, "255 characters"),
])
def test_invalid_references_are_refused_with_a_reason(text, reason):
    with pytest.raises(InvalidReference, match=reason):
        parse_reference(text)


def test_invalid_reference_is_an_invalid_config_error():
    with pytest.raises(InvalidConfig):
        parse_reference("UPPER")
    assert InvalidReference.status == 400


def test_with_tag_and_digest():
    ref = parse_reference("127.0.0.1:5000/team/app:v1")
    assert str(ref.with_tag("v2")) == "127.0.0.1:5000/team/app:v2"
    assert str(ref.with_digest(DIGEST)) == f"127.0.0.1:5000/team/app@{DIGEST}"
    with pytest.raises(InvalidReference):
        ref.with_tag("no good")
    with pytest.raises(InvalidReference):
        ref.with_digest("sha256:1234")


def test_registry_host_and_insecure_default():
    assert parse_reference("busybox").registry_host == "registry-1.docker.io"
    assert parse_reference("127.0.0.1:5000/x").registry_host == "127.0.0.1:5000"
    assert parse_reference("127.0.0.1:5000/x").insecure_by_default
    assert parse_reference("localhost:5000/x").insecure_by_default
    assert parse_reference("[::1]:5000/x").insecure_by_default
    assert not parse_reference("example.com/x").insecure_by_default
    assert not parse_reference("busybox").insecure_by_default


def test_is_image_id():
    assert is_image_id(HEX)
    assert is_image_id(DIGEST)
    assert not is_image_id("busybox")
    assert not is_image_id(HEX[:12])
