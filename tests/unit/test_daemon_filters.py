"""daemon/filters.py: the filter rules every list shares (what compose finds its objects by)."""

import time

import pytest

from teachdock.daemon import filters
from teachdock.errors import InvalidConfig

WEB = {"Config": {"Labels": {"com.docker.compose.project": "demo", "com.docker.compose.oneoff": "False"},
                  "Image": "busybox"},
       "State": {"ExitCode": 0}, "Image": "sha256:" + "ab" * 32,
       "Mounts": [{"Type": "volume", "Name": "demo_site", "Destination": "/www"}]}


def matches(wanted, *, status="running", data=WEB, name="/demo-web-1", networks=(("f00d" * 16, "demo_front"),)):
    return filters.container_matches(wanted, container_id="c0ffee" + "0" * 58, name=name, status=status,
                                     data=data, networks=list(networks))


def test_label_key_only_and_key_value():
    labels = {"a": "1", "b": ""}
    assert filters.label_matches(labels, "a") and filters.label_matches(labels, "b")
    assert filters.label_matches(labels, "a=1") and not filters.label_matches(labels, "a=2")
    assert not filters.label_matches(labels, "c") and filters.label_matches(labels, "b=")
    assert filters.labels_match(labels, ["a", "b="]) and not filters.labels_match(labels, ["a", "c"])


def test_compose_oneoff_filter_tells_service_containers_from_run_containers():
    assert matches({"label": ["com.docker.compose.project=demo", "com.docker.compose.oneoff=False"]})
    assert not matches({"label": ["com.docker.compose.project=demo", "com.docker.compose.oneoff=True"]})
    assert not matches({"label": ["com.docker.compose.config-hash", "com.docker.compose.project=demo"]})


def test_name_id_status_network_volume_ancestor():
    assert matches({"name": ["web"]}) and matches({"name": ["^demo-web-1$"]}) and not matches({"name": ["db"]})
    assert matches({"id": ["c0ffee"]}) and not matches({"id": ["beef"]})
    assert matches({"status": ["running", "paused"]}) and not matches({"status": ["exited"]})
    assert matches({"exited": ["0"]}, status="exited") and not matches({"exited": ["1"]}, status="exited")
    assert not matches({"exited": ["0"]}, status="running")
    assert matches({"network": ["demo_front"]}) and matches({"network": ["f00d" * 3]})
    assert not matches({"network": ["f00"]}) and not matches({"network": ["demo_back"]})
    assert matches({"volume": ["demo_site"]}) and matches({"volume": ["/www"]}) and not matches({"volume": ["x"]})
    assert matches({"ancestor": ["busybox"]}) and matches({"ancestor": ["abab"]}) and not matches({"ancestor": ["x"]})


@pytest.mark.parametrize("wanted, message", [
    ({"status": ["sleeping"]}, "invalid filter 'status=sleeping'"),
    ({"exited": ["zero"]}, "invalid filter 'exited=zero'"),
])
def test_bad_values_are_dockerds_errors(wanted, message):
    with pytest.raises(InvalidConfig, match=message):
        matches(wanted)


def test_unknown_keys_are_refused_not_ignored():
    filters.check_keys({"label": ["a"], "name": ["b"]}, filters.CONTAINER_KEYS)
    with pytest.raises(InvalidConfig, match="invalid filter 'colour'"):
        filters.check_keys({"colour": ["red"]}, filters.CONTAINER_KEYS)


def test_events_carry_labels_and_match_label_network_volume_and_prefixed_actions():
    from teachdock.daemon.events import EventLog, filter_matcher  # noqa: PLC0415

    log = EventLog()
    log.publish("container", "start", "c" * 64, **{"com.docker.compose.project": "demo", "image": "busybox",
                                                    "name": "demo-web-1"})
    log.publish("container", "health_status: healthy", "c" * 64, name="demo-web-1")
    log.publish("network", "create", "n" * 64, name="demo_front", type="bridge")
    log.publish("volume", "destroy", "demo_site", driver="local")
    events = list(log.stream(since=0, until=time.time() + 0.01))
    assert len(events) == 4

    def kept(filters):
        return [(event["Type"], event["Action"]) for event in events if filter_matcher(filters)(event)]

    assert kept({"label": {"com.docker.compose.project=demo": True}}) == [("container", "start")]
    assert kept({"label": ["com.docker.compose.project"]}) == [("container", "start")]
    assert kept({"label": ["com.docker.compose.project=other"]}) == []
    assert kept({"network": ["demo_front"]}) == [("network", "create")]
    assert kept({"network": ["nnnn"]}) == [("network", "create")]
    assert kept({"volume": {"demo_site": True}, "event": ["destroy"]}) == [("volume", "destroy")]
    assert kept({"event": ["health_status"]}) == [("container", "health_status: healthy")]  # moby's prefix rule
    assert kept({"event": ["health_status: healthy"]}) == [("container", "health_status: healthy")]
    assert kept({"event": ["health"]}) == []
    assert kept({"type": ["container"], "container": ["demo-web-1"]}) == [
        ("container", "start"), ("container", "health_status: healthy")]
    with pytest.raises(InvalidConfig, match="invalid filter 'colour'"):
        filter_matcher({"colour": ["red"]})
