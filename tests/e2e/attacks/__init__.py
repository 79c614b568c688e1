"""Attacks and faults against amlbot's guarantees, one file per area (issue: receipts that cannot lie)."""
