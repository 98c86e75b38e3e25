"""Chapter 06, registries: a throw-away local registry, a token server, the HTTP exchange of a
pull or push as a table and a sequence diagram, a recording proxy to watch another client
(skopeo) push the way Docker does, and the exercises.
"""

from teachdock.lab.registries.checks import check_blob_digest, check_pull_by_digest, check_upload_count
from teachdock.lab.registries.recording_proxy import RecordingProxy, skopeo_copy
from teachdock.lab.registries.registry_lab import (
    ExchangeInspector,
    TEAM_CONFIG,
    TokenServer,
    flip_byte,
    jwt_claims,
    local_registry,
    plot_sequence,
    process_running,
    short_digest,
    tamper_blob,
    trace_table,
)

__all__ = [
    "ExchangeInspector",
    "RecordingProxy",
    "TEAM_CONFIG",
    "TokenServer",
    "check_blob_digest",
    "check_pull_by_digest",
    "check_upload_count",
    "flip_byte",
    "jwt_claims",
    "local_registry",
    "plot_sequence",
    "process_running",
    "short_digest",
    "skopeo_copy",
    "tamper_blob",
    "trace_table",
]
