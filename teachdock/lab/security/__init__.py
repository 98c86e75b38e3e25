"""Chapter 10, security: the escape attempts (attempts.py), which layer stops each (layers.py),
the grid of attempts × configurations (grid.py), a seccomp filter of one's own (own_filter.py)
and the exercises (exercises.py)."""

from teachdock.lab.security.attempts import Attempt, Facts, Gate, Outcome, attempts, host_disk, parse_run, probe_script
from teachdock.lab.security.exercises import (check_least_privilege, check_mkdir_filter, check_prediction,
                                              check_readonly_socket, check_through_without_filter)
from teachdock.lab.security.grid import (Column, Configuration, Grid, configurations, facts_table, run_grid,
                                         try_configuration, try_in_user_namespace, try_rootless_without_filter,
                                         write_marker)
from teachdock.lab.security.own_filter import docker_rules_for, instructions, profile_blocking, try_filter
from teachdock.lab.security.layers import LAYERS, Verdict, decide, device_allowed, refused_by_docker_profile

__all__ = ["LAYERS", "Attempt", "Column", "Configuration", "Facts", "Gate", "Grid", "Outcome", "Verdict",
           "attempts", "check_least_privilege", "check_mkdir_filter", "check_prediction", "check_readonly_socket",
           "check_through_without_filter", "configurations", "decide", "device_allowed", "docker_rules_for",
           "facts_table", "host_disk", "instructions", "parse_run", "probe_script", "profile_blocking",
           "refused_by_docker_profile", "run_grid", "try_configuration", "try_filter", "try_in_user_namespace",
           "try_rootless_without_filter", "write_marker"]
