"""Request bodies and paths checked before a handler runs: JSON kinds in Go's words, path
parameters percent-decoded, NUL bytes refused (no daemon needed)."""

import pytest

from teachdock.daemon.bodies import check_body
from teachdock.daemon.routes import Router
from teachdock.daemon.server import HTTPError


@pytest.mark.parametrize("body, message", [
    ({"Image": "busybox", "ExposedPorts": ["80/tcp"]},
     "json: cannot unmarshal array into Go struct field Config.ExposedPorts of type map[string]interface {}"),
    ({"Tty": 1}, "cannot unmarshal number into Go struct field Config.Tty of type bool"),
    ({"Labels": "a=b"}, "cannot unmarshal string into Go struct field Config.Labels"),
    ({"HostConfig": []}, "cannot unmarshal array into Go struct field Config.HostConfig of type struct"),
    ({"HostConfig": {"AutoRemove": "true"}}, "Go struct field Config.HostConfig.AutoRemove of type bool"),
    ({"NetworkingConfig": {"EndpointsConfig": [1]}}, "Config.NetworkingConfig.EndpointsConfig"),
])
def test_wrong_kinds_in_a_create_body(body, message):
    with pytest.raises(HTTPError) as raised:
        check_body("POST", "/containers/create", body)
    assert raised.value.status == 400 and message in str(raised.value)


def test_right_kinds_null_and_unlisted_routes_pass():
    check_body("POST", "/containers/create", {"Image": "busybox", "Tty": True, "Labels": {}, "HostConfig": None,
                                              "ExposedPorts": {"80/tcp": {}}, "Unknown": [1]})
    check_body("POST", "/volumes/create", {"Name": "data", "Labels": {"a": "b"}})
    check_body("POST", "/containers/{name}/start", {"Anything": 5})
    with pytest.raises(HTTPError, match="CreateOptions.Name of type string"):
        check_body("POST", "/volumes/create", {"Name": True})  # a bool is not a string (nor a number)


class FakeRequest:
    def __init__(self, method, path, query=None):
        self.method, self.path, self.query = method, path, query or {}
        self.body_check = None


def routed(path, query=None):
    seen = {}
    router = Router(daemon=None)
    router.add("GET", "/containers/{name}/json", lambda daemon, request, name: seen.update(name=name))
    router.add("POST", "/volumes/create", lambda daemon, request: seen.update(check=request.body_check))
    router.dispatch(FakeRequest("POST" if path == "/volumes/create" else "GET", path, query))
    return seen


def test_path_parameters_are_percent_decoded():
    assert routed("/containers/..%2F..%2Fetc/json") == {"name": "../../etc"}
    assert routed("/containers/web/json") == {"name": "web"}


@pytest.mark.parametrize("path, query, message", [
    ("/containers/a%00b/json", None, "a NUL byte is not allowed"),
    ("/containers/web/json", {"path": "/etc\x00x"}, "invalid query parameter path: a NUL byte"),
])
def test_nul_bytes_are_refused_before_the_handler(path, query, message):
    with pytest.raises(HTTPError, match=message) as raised:
        routed(path, query)
    assert raised.value.status == 400


def test_the_route_hands_its_body_check_to_the_request():
    check = routed("/volumes/create")["check"]
    with pytest.raises(HTTPError, match="CreateOptions.Labels"):
        check({"Labels": ["a"]})
