"""Chapter 09, applications of several containers: the real compose clients as one more client of
the Engine API (``compose_trace``: a whole ``docker compose up`` read as the calls it made;
``compose_app``: the chapter's three-service application), health checks watched over time
(``health_watch``), and the exercises (``exercises``).

The sections on moving containers and on daemons that work together have modules of their own,
imported where they are used so that this package imports quickly and without them:
``from teachdock.lab.applications import cold_move`` (export/import, commit/save/load),
``live_move`` (CRIU) and ``swarm`` (two dockerd in swarm mode).
"""

from teachdock.lab.applications.compose_app import FETCH, HEALTHY_SHOP, PROJECT, SHOP
from teachdock.lab.applications.compose_trace import (ComposeTrace, compare_counts, compose, compose_clients, compose_v1, compose_v2,
                                                      count_table, created_labels, labels_table, plot_lanes,
                                                      read_filters, route, route_counts, trace_compose, write_project)
from teachdock.lab.applications.exercises import (GREETING, NOTES, NOTES_FILE, SERVER_COMMAND, SLOW_SERVER_COMMAND,
                                                  check_moved_with_data, check_reach_by_name, check_scale_prediction,
                                                  check_waits_until_healthy, start_notes)
from teachdock.lab.applications.health_watch import COLOURS, HealthSample, HealthWatch, health_of

__all__ = [
    "COLOURS", "FETCH", "GREETING", "HEALTHY_SHOP", "NOTES", "NOTES_FILE", "PROJECT", "SERVER_COMMAND", "SHOP",
    "SLOW_SERVER_COMMAND", "ComposeTrace", "compare_counts", "HealthSample", "HealthWatch", "check_moved_with_data",
    "check_reach_by_name", "check_scale_prediction", "check_waits_until_healthy", "compose", "compose_clients",
    "compose_v1", "compose_v2", "count_table", "created_labels", "health_of", "labels_table", "plot_lanes",
    "read_filters", "route", "route_counts", "start_notes", "trace_compose", "write_project",
]
