"""Tests of the stand-ins themselves (the stand-ins are the package sandbox.standins)."""
