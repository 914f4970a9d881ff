"""Tests of the cluster pieces in isolation: the machine, the codec, the Lua scripts."""
