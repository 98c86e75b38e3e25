"""Chapter 10, security: the escape attempts (attempts.py), which layer stops each (layers.py),
the grid of attempts × configurations (grid.py), a seccomp filter of one's own (own_filter.py)
and the exercises (exercises.py)."""

from teachdock.lab.security.attempts import Attempt, Facts, Gate, Outcome, attempts, host_disk, parse_run, probe_script
from teachdock.lab.security.grid import (Column, Configuration, Grid, configurations, run_grid, try_configuration,
                                         try_in_user_namespace, write_marker)
from teachdock.lab.security.layers import LAYERS, Verdict, decide, device_allowed, refused_by_docker_profile

__all__ = ["LAYERS", "Attempt", "Column", "Configuration", "Facts", "Gate", "Grid", "Outcome", "Verdict",
           "attempts", "configurations", "decide", "device_allowed", "host_disk", "parse_run", "probe_script",
           "refused_by_docker_profile", "run_grid", "try_configuration", "try_in_user_namespace", "write_marker"]
