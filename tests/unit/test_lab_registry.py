"""The registries chapter's helpers without a registry: trace -> table rows and sequence
arrows, the diagram, flipping bytes, and the exercise judges with their hints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from teachdock.lab.registries import registry_lab
from teachdock.lab.registries.checks import (check_blob_digest, check_upload_count, judge_blob_digest,
                                           judge_pull_by_digest, judge_upload_count, uploads_in)
from teachdock.lab.registries.recording_proxy import read_chunked
from teachdock.lab.registries.registry_lab import (LocalRegistry, RegistryLabError, flip_byte, plot_sequence, sequence_arrows,
                                        short_path, trace_rows, trace_table)
from tests.support.korean import reads_korean

HOST = "127.0.0.1:5000"
LAYER = "sha256:" + "31f2c65946c5" + "0" * 52
CONFIG = "sha256:" + "c31d97c9b387" + "1" * 52
MANIFEST = "sha256:" + "1e073b499d65" + "2" * 52
UUID = "8922a073-60f4-499b-a10f-0ff8c022611d"


def exchange(method, path, status, reason="", *, digest="", request=None, response=None, auth="", note=""):
    """One trace entry, shaped as teachdock.image.registry records it."""
    return {"method": method, "url": f"http://{HOST}{path}", "status": status, "reason": reason, "auth": auth,
            "digest": digest, "note": note, "ms": 1.0, "request": request or {}, "response": response or {}}


def push_trace():
    upload = f"/v2/team/busybox/blobs/uploads/{UUID}?_state=abcDEF%3D%3D"
    return [
        exchange("GET", "/v2/", 200, "OK"),
        exchange("HEAD", f"/v2/team/busybox/blobs/{LAYER}", 404, "Not Found", digest=LAYER),
        exchange("POST", "/v2/team/busybox/blobs/uploads/", 202, "Accepted", request={"Content-Length": "0"},
                 response={"Location": f"http://{HOST}{upload}", "Docker-Upload-UUID": UUID}),
        exchange("PUT", f"{upload}&digest=sha256%3A{LAYER[7:]}", 201, "Created", digest=LAYER,
                 request={"Content-Type": "application/octet-stream", "Content-Length": "1036677"},
                 response={"Docker-Content-Digest": LAYER}),
        exchange("PUT", "/v2/team/busybox/manifests/1", 201, "Created", digest=MANIFEST,
                 request={"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Content-Length": "405"}),
    ]


def second_push_trace():
    return [
        exchange("GET", "/v2/", 200, "OK"),
        exchange("HEAD", f"/v2/team/busybox/blobs/{LAYER}", 200, "OK", digest=LAYER),
        exchange("HEAD", f"/v2/team/busybox/blobs/{CONFIG}", 200, "OK", digest=CONFIG),
        exchange("PUT", "/v2/team/busybox/manifests/1", 201, "Created", digest=MANIFEST),
    ]


# ---- trace -> table ------------------------------------------------------------------------

def test_rows_shorten_paths_drop_upload_state_and_say_what_each_exchange_means():
    rows = trace_rows(push_trace())
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert [(r["method"], r["status"]) for r in rows] == [("GET", 200), ("HEAD", 404), ("POST", 202),
                                                          ("PUT", 201), ("PUT", 201)]
    assert rows[1]["path"] == "/v2/team/busybox/blobs/sha256:31f2c65946c5…"
    assert rows[3]["path"] == "/v2/team/busybox/blobs/uploads/8922a073…?digest=sha256:31f2c65946c5…"
    assert "_state" not in rows[3]["path"] and HOST not in rows[3]["path"]
    assert rows[1]["meaning"] == "blob missing: upload it"
    assert rows[2]["meaning"] == "upload started"
    assert "Location: /v2/team/busybox/blobs/uploads/8922a073…" in rows[2]["headers"]
    assert "sent 1,036,677 bytes" in rows[3]["headers"]
    assert rows[4]["meaning"] == "manifest published under the tag"
    assert "Content-Type: application/vnd.oci.image.manifest.v1+json" in rows[4]["headers"]
    assert rows[4]["digest"] == "sha256:1e073b499d65…"


def test_rows_for_a_second_push_say_skip_and_auth_rows_show_the_challenge():
    assert [r["meaning"] for r in trace_rows(second_push_trace())[1:3]] == ["blob already there: skip it"] * 2
    challenged = exchange("GET", "/v2/", 401, "Unauthorized",
                          response={"WWW-Authenticate": 'Basic realm="teachdock-lab"'})
    retried = exchange("GET", "/v2/team/busybox/manifests/1", 200, "OK", auth="basic")
    rows = trace_rows([challenged, retried])
    assert rows[0]["meaning"] == "credentials needed"
    assert 'WWW-Authenticate: Basic realm="teachdock-lab"' in rows[0]["headers"]
    assert rows[1]["headers"].startswith("Authorization: Basic")


def test_table_html_and_text_hold_every_row():
    table = trace_table(push_trace(), "docker push x")
    html = table._repr_html_()
    assert html.count("<tr style=") == 5 and "docker push x" in html
    text = repr(table).splitlines()
    assert text[0] == "docker push x" and len(text) == 6 and "HEAD" in text[2] and "404" in text[2]


def test_short_path_keeps_a_plain_path():
    assert short_path(f"http://{HOST}/v2/") == "/v2/"
    assert short_path("/v2/team/app/tags/list?n=10") == "/v2/team/app/tags/list?n=10"


# ---- sequence diagram ----------------------------------------------------------------------

def test_sequence_arrows_alternate_request_and_response_in_trace_order():
    arrows = sequence_arrows(push_trace())
    assert len(arrows) == 10
    assert [a["kind"] for a in arrows[:4]] == ["request", "response", "request", "response"]
    assert arrows[0] == {"source": "client", "target": "registry", "kind": "request", "label": "GET /v2/"}
    assert arrows[3]["source"] == "registry" and arrows[3]["target"] == "client"
    assert arrows[3]["label"].startswith("404 Not Found") and "upload it" in arrows[3]["label"]


def test_token_exchanges_go_to_the_token_server():
    token = exchange("GET", "/token?service=reg&scope=repository:team/app:pull", 200, "OK", note="token")
    arrows = sequence_arrows([token])
    assert arrows[0]["target"] == "token server" and arrows[1]["source"] == "token server"
    assert "token issued" in arrows[1]["label"]


def test_plot_draws_one_arrow_per_message_and_a_lifeline_per_party():
    pytest.importorskip("matplotlib")
    token = exchange("GET", "/token?scope=x", 200, "OK", note="token")
    fig = plot_sequence(push_trace() + [token], "t")
    ax = fig.axes[0]
    arrows = [child for child in ax.texts if getattr(child, "arrow_patch", None) is not None]
    assert len(arrows) == 12
    assert len(ax.lines) == 3        # client, registry, token server
    labels = {text.get_text() for text in ax.texts}
    assert {"client", "registry", "token server", "GET /v2/"} <= labels


# ---- small helpers -------------------------------------------------------------------------

def test_flip_byte_changes_exactly_one_bit_and_flipping_back_restores():
    data = b"hello, registry\n"
    changed = flip_byte(data, 0)
    assert changed == b"iello, registry\n" and flip_byte(changed, 0) == data
    assert sum(a != b for a, b in zip(data, flip_byte(data, 5))) == 1


def test_blob_file_follows_distributions_layout(tmp_path):
    registry = LocalRegistry(HOST, 1, tmp_path / "storage", tmp_path)
    assert registry.blob_file(LAYER) == (tmp_path / "storage/docker/registry/v2/blobs/sha256/31" / LAYER[7:] / "data")


def test_missing_docker_registry_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(registry_lab.shutil, "which", lambda name: None)
    with pytest.raises(RegistryLabError, match="apt-get install docker-registry"):
        with registry_lab.local_registry(tmp_path):
            pass
    assert list(tmp_path.iterdir()) == []


# ---- exercise 1: the digest of a blob ------------------------------------------------------

DATA = b"a layer is just bytes\n"
TRUTH = "sha256:" + hashlib.sha256(DATA).hexdigest()


def test_blob_digest_right_and_placeholder():
    assert judge_blob_digest(TRUTH, DATA).passed
    assert judge_blob_digest(f"  {TRUTH}\n", DATA).passed
    assert not judge_blob_digest(..., DATA).answered


@pytest.mark.parametrize("answer, hint", [
    (TRUTH[7:], "put 'sha256:' in front"),
    (TRUTH.upper().replace("SHA256", "sha256"), "lowercase"),
    ("sha256:" + hashlib.md5(DATA).hexdigest(), "MD5"),
    ("sha256:" + hashlib.sha1(DATA).hexdigest(), "SHA-1"),
    ("sha256:" + hashlib.sha256(DATA.strip()).hexdigest(), "newline"),
    ("sha256:" + hashlib.sha256(b"/tmp/note.txt").hexdigest(), "name"),
    (42, "string"),
    ("sha256:xyz", "Not a digest"),
])
def test_blob_digest_hints(answer, hint):
    result = judge_blob_digest(answer, DATA)
    assert not result.passed and result.answered and hint in result.message


def test_check_blob_digest_hashes_the_file_now(tmp_path):
    note = tmp_path / "note.txt"
    note.write_bytes(DATA)
    assert check_blob_digest(TRUTH, note).passed
    note.write_bytes(DATA + b"!")
    assert not check_blob_digest(TRUTH, note).passed
    assert "Could not read" in check_blob_digest(TRUTH, tmp_path / "gone").message


# ---- exercise 2: predict the uploads of a push into a new repository ------------------------

def new_repository_push_trace():
    """busybox pushed into a repository new to the registry: both HEADs 404, both blobs go up."""
    trace = [exchange("GET", "/v2/", 200, "OK")]
    for blob in (LAYER, CONFIG):
        upload = f"/v2/team/copy/blobs/uploads/{UUID}?_state=x"
        trace += [exchange("HEAD", f"/v2/team/copy/blobs/{blob}", 404, digest=blob),
                  exchange("POST", "/v2/team/copy/blobs/uploads/", 202),
                  exchange("PUT", f"{upload}&digest=sha256%3A{blob[7:]}", 201, digest=blob)]
    return trace + [exchange("PUT", "/v2/team/copy/manifests/1", 201, digest=MANIFEST)]


def test_uploads_are_the_closing_puts_of_blob_uploads_not_the_manifest():
    assert uploads_in(new_repository_push_trace()) == [LAYER, CONFIG]
    assert uploads_in(second_push_trace()) == []


@pytest.mark.parametrize("answer", [2, "2", " 2 "])
def test_upload_count_right(answer):
    result = judge_upload_count(answer, new_repository_push_trace(), 2, 2)
    assert result.passed and "404" in result.message and "went from 2 to 2" in result.message


@pytest.mark.parametrize("answer, hint", [
    (0, "asks about the new repository"),
    (3, "the manifest is not a blob upload"),
    (1, "Too few"),
    (5, "Too many"),
    ("two", "whole number"),
    (None, "Replace the ..."),
])
def test_upload_count_hints(answer, hint):
    result = judge_upload_count(answer, new_repository_push_trace())
    assert not result.passed and hint in result.message


def test_upload_count_follows_the_trace_not_a_fixed_number():
    # if the registry did answer 200 (Docker Hub's cross-repository mount done first, say), 0 is right
    assert judge_upload_count(0, second_push_trace()).passed
    assert not judge_upload_count(2, second_push_trace()).passed


def test_check_upload_count_says_why_when_the_registry_is_gone(tmp_path):
    from teachdock.image.images import Images

    images = Images(tmp_path / "data")
    images.bootstrap_busybox()
    gone = LocalRegistry("127.0.0.1:1", 0, tmp_path / "storage", tmp_path)
    result = check_upload_count(2, images.store, gone)
    assert not result.passed and "Is the registry of section 2 still running?" in result.message
    assert [str(name) for image in images.store.list_images() for name in image.names] == [
        "docker.io/library/busybox:latest"]          # the check's own tag is gone again


def test_read_chunked_joins_the_chunks_and_skips_trailers():
    import io

    stream = io.BytesIO(b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT")
    assert read_chunked(stream) == b"hello, world"
    assert stream.read() == b"NEXT"


def test_a_chunked_patch_shows_the_bytes_it_carried():
    entry = exchange("PATCH", f"/v2/team/busybox/blobs/uploads/{UUID}", 202,
                     request={"Transfer-Encoding": "chunked"})
    entry["body_bytes"] = 1036677
    assert "sent 1,036,677 bytes" in trace_rows([entry])[0]["headers"]


# ---- exercise 3: push under a new tag, pull by digest --------------------------------------

REPO = f"{HOST}/team/app"


def test_pull_by_digest_right():
    result = judge_pull_by_digest(REPO, "v2", MANIFEST, [f"{REPO}@{MANIFEST}"])
    assert result.passed and "pulled by digest" in result.message


@pytest.mark.parametrize("tag_digest, names, hint, answered", [
    (None, [], "your store is empty", False),
    (None, [f"{REPO}@{MANIFEST}"], "has no tag v2", True),
    (MANIFEST, [], "exercise_store is empty", True),
    (MANIFEST, [f"{REPO}:v2", f"{REPO}@{MANIFEST}"], "You pulled by tag", True),
    (MANIFEST, [f"{HOST}/team/busybox@{MANIFEST}"], "but not", True),
])
def test_pull_by_digest_hints(tag_digest, names, hint, answered):
    result = judge_pull_by_digest(REPO, "v2", tag_digest, names)
    assert not result.passed and result.answered is answered and hint in result.message


def test_lab_module_imports_nothing_from_tests():
    source = Path(registry_lab.__file__).read_text()
    assert "tests" not in {line.split()[1].split(".")[0] for line in source.splitlines()
                           if line.startswith(("import ", "from "))}


def test_jwt_claims_decodes_the_middle_part_without_padding():
    import base64
    import json

    claims = {"sub": "alice", "access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}]}
    middle = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert registry_lab.jwt_claims(f"eyJhbGciOiJub25lIn0.{middle}.c2ln") == claims


def test_exchange_inspector_follows_both_choices():
    pytest.importorskip("ipywidgets")
    challenged = exchange("GET", "/v2/", 401, "Unauthorized",
                          response={"WWW-Authenticate": 'Bearer realm="http://127.0.0.1:1/token"'})
    inspector = registry_lab.ExchangeInspector({"push": push_trace(), "auth": [challenged]})
    assert len(inspector.step_choice.options) == 5 and inspector.step_choice.value == 0
    assert "<b>GET</b>" in inspector.details.value and "version check" in inspector.details.value
    inspector.step_choice.value = 2
    assert "Location: http://127.0.0.1:5000/v2/team/busybox/blobs/uploads/" in inspector.details.value
    assert "upload started" in inspector.details.value
    inspector.trace_choice.value = "auth"
    assert inspector.step_choice.options == (("1. GET /v2/ → 401", 0),)
    assert "WWW-Authenticate: Bearer realm=" in inspector.details.value and "401 Unauthorized" in inspector.details.value


def test_exchange_details_marks_an_authorization_it_did_not_record():
    html = registry_lab.exchange_details(exchange("GET", "/v2/x/manifests/1", 200, "OK", auth="bearer"))
    assert "Authorization: Bearer … (not recorded)" in html and "manifest found" in html


# ---- in Korean (TEACHDOCK_LANG=ko) -----------------------------------------------------------

def test_the_judges_speak_korean_right_and_wrong(korean):
    results = [judge_blob_digest(TRUTH, DATA), judge_blob_digest(TRUTH[7:], DATA),
               judge_blob_digest("sha256:" + hashlib.md5(DATA).hexdigest(), DATA),
               judge_upload_count(2, new_repository_push_trace(), 2, 2), judge_upload_count(0, new_repository_push_trace()),
               judge_upload_count(3, new_repository_push_trace()),
               judge_pull_by_digest(REPO, "v2", MANIFEST, [f"{REPO}@{MANIFEST}"]),
               judge_pull_by_digest(REPO, "v2", MANIFEST, []),
               judge_pull_by_digest(REPO, "v2", MANIFEST, [f"{REPO}:v2", f"{REPO}@{MANIFEST}"])]
    assert [result.passed for result in results] == [True, False, False] * 3
    for result in results:
        assert reads_korean(result.message), result.message


def test_the_exchange_table_diagram_and_inspector_speak_korean(korean):
    rows = trace_rows(push_trace())
    assert rows[1]["meaning"] == "블롭 없음: 업로드함" and "1,036,677바이트 보냄" in rows[3]["headers"]
    html = trace_table(push_trace(), "push")._repr_html_()
    assert ">단계</th>" in html and ">의미</th>" in html and ">meaning<" not in html
    assert reads_korean(" ".join(arrow["label"] for arrow in sequence_arrows(push_trace())
                                 if arrow["kind"] == "response"))
    pytest.importorskip("matplotlib")
    labels = {text.get_text() for text in plot_sequence(push_trace()).axes[0].texts}
    assert {"클라이언트", "레지스트리"} <= labels
    assert plot_sequence(push_trace()).axes[0].get_title() == "HTTP 요청과 응답"
    pytest.importorskip("ipywidgets")
    inspector = registry_lab.ExchangeInspector({"push": push_trace()})
    assert inspector.trace_choice.description == "기록" and "요청 헤더" in inspector.details.value


def test_the_korean_diagram_has_every_glyph(korean):
    """The response labels mix monospace HTTP and Hangul: the monospace font falls back to the Hangul one."""
    import io
    import warnings

    pytest.importorskip("matplotlib")
    from matplotlib import font_manager

    from teachdock.lab.common.language import KOREAN_FONTS

    if not {font.name for font in font_manager.fontManager.ttflist} & set(KOREAN_FONTS):
        pytest.skip("matplotlib knows no Hangul font here (fonts-nanum missing, or its font cache is older)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # "Glyph … missing from font(s)" is a UserWarning
        plot_sequence(push_trace()).savefig(io.BytesIO(), format="png")
