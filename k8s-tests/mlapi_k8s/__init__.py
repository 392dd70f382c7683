"""Helpers of the cluster checks in k8s-tests: waiting, port-forwarding, load, cluster access."""

from .load import LoadResult, run_load
from .portforward import PortForward, find_tool, parse_forwarding_line
from .wait import env_seconds, wait_until

__all__ = ["LoadResult", "PortForward", "env_seconds", "find_tool", "parse_forwarding_line",
           "run_load", "wait_until"]
